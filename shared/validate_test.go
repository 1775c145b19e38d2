package shared_test

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/parley-chat/parley/shared"
)

func TestValidateRoom(t *testing.T) {
	for _, ok := range []string{"lobby", "a", "0", "go-app_v10", strings.Repeat("a", 64)} {
		require.NoError(t, shared.ValidateRoom(ok), ok)
	}
	for _, bad := range []string{"", "Lobby", "-x", "_x", "a b", "a/b", "大厅", strings.Repeat("a", 65), "lobby\n"} {
		require.Equal(t, shared.CodeInvalidRoom, shared.ErrorCode(shared.ValidateRoom(bad)), "%q", bad)
	}
}

func TestNormalizeName(t *testing.T) {
	for in, want := range map[string]string{
		"alice":                 "alice",
		"  bob \t":              "bob",
		"小明":                    "小明",
		"👩‍💻 dev":               "👩‍💻 dev", // ZWJ sequences are welcome
		strings.Repeat("名", 32): strings.Repeat("名", 32),
		"\u3000全角空格\u3000":      "全角空格",
	} {
		got, err := shared.NormalizeName(in)
		require.NoError(t, err, "%q", in)
		require.Equal(t, want, got)
	}
	for _, bad := range []string{"", "   ", strings.Repeat("名", 33), "a\x00b", "a\nb", "bell\a", "\xff"} {
		_, err := shared.NormalizeName(bad)
		require.Equal(t, shared.CodeInvalidName, shared.ErrorCode(err), "%q", bad)
	}
}

func TestNormalizeText(t *testing.T) {
	for in, want := range map[string]string{
		"hi":                         "hi",
		"  padded  ":                 "  padded  ",
		"line1\r\nline2\rline3\n\tx": "line1\nline2\nline3\n\tx",
		"你好，世界 🎉":                    "你好，世界 🎉",
		strings.Repeat("字", 2000):    strings.Repeat("字", 2000),
	} {
		got, err := shared.NormalizeText(in)
		require.NoError(t, err, "%q", in)
		require.Equal(t, want, got)
	}
	for in, code := range map[string]string{
		"":                        shared.CodeTextEmpty,
		" \n\t\r\n ":              shared.CodeTextEmpty,
		"\u3000":                  shared.CodeTextEmpty,
		strings.Repeat("字", 2001): shared.CodeTextTooLong,
		"a\x00b":                  shared.CodeTextInvalid,
		"esc\x1b[31m":             shared.CodeTextInvalid,
		"\xc3\x28":                shared.CodeTextInvalid,
		"del\x7f":                 shared.CodeTextInvalid,
	} {
		_, err := shared.NormalizeText(in)
		require.Equal(t, code, shared.ErrorCode(err), "%q", in)
	}
}

func TestSendRequestNormalize(t *testing.T) {
	r := shared.SendRequest{Text: "a\r\nb", ClientMsgID: "c-1"}
	require.NoError(t, r.Normalize())
	require.Equal(t, "a\nb", r.Text)
	r = shared.SendRequest{Text: "x", ClientMsgID: strings.Repeat("i", 65)}
	require.Equal(t, shared.CodeClientMsgIDTooLong, shared.ErrorCode(r.Normalize()))
	r = shared.SendRequest{Text: "x", ClientMsgID: "has space"}
	require.Equal(t, shared.CodeBadRequest, shared.ErrorCode(r.Normalize()))
}

func TestPollRequestValidateAndQuery(t *testing.T) {
	ok := []shared.PollRequest{
		{},
		{After: shared.Ptr[uint64](0), Wait: shared.Ptr(0)},
		{After: shared.Ptr[uint64](5), Epoch: "e", Wait: shared.Ptr(60), Limit: shared.Ptr(500)},
		{Before: shared.Ptr[uint64](1), Limit: shared.Ptr(1)},
	}
	for _, r := range ok {
		require.NoError(t, r.Validate(), "%+v", r)
	}
	bad := []shared.PollRequest{
		{After: shared.Ptr[uint64](1), Before: shared.Ptr[uint64](9)},
		{Before: shared.Ptr[uint64](0)},
		{Wait: shared.Ptr(-1)},
		{Wait: shared.Ptr(61)},
		{Limit: shared.Ptr(0)},
		{Limit: shared.Ptr(501)},
		{Epoch: strings.Repeat("e", 65)},
	}
	for _, r := range bad {
		require.Equal(t, shared.CodeInvalidParam, shared.ErrorCode(r.Validate()), "%+v", r)
	}
	q := shared.PollRequest{After: shared.Ptr[uint64](7), Epoch: "ep", Wait: shared.Ptr(25), Limit: shared.Ptr(10)}.Query()
	require.Equal(t, "after=7&epoch=ep&limit=10&wait=25", q.Encode())
	require.Equal(t, 25*1e9, float64((&shared.PollRequest{}).WaitDuration()))
	require.Equal(t, shared.DefaultLimit, (&shared.PollRequest{}).LimitOrDefault())
}

// FuzzNormalizeText checks that whatever the input, an accepted text obeys
// every rule and normalising is idempotent.
func FuzzNormalizeText(f *testing.F) {
	for _, s := range []string{"hi", "", " ", "a\r\nb", "\x00", "你好", "\xff\xfe", strings.Repeat("x", 2001), "\t\n", "🎉\u200d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := shared.NormalizeText(in)
		if err != nil {
			if shared.ErrorCode(err) == shared.CodeInternal {
				t.Fatalf("untyped error for %q: %v", in, err)
			}
			return
		}
		if !utf8.ValidString(out) || strings.TrimSpace(out) == "" || utf8.RuneCountInString(out) > shared.MaxTextRunes || strings.ContainsRune(out, '\r') {
			t.Fatalf("accepted bad text %q from %q", out, in)
		}
		again, err := shared.NormalizeText(out)
		if err != nil || again != out {
			t.Fatalf("not idempotent: %q -> %q, %v", out, again, err)
		}
	})
}

// FuzzNormalizeName does the same for display names.
func FuzzNormalizeName(f *testing.F) {
	for _, s := range []string{"alice", " 小明 ", "", "\x00", strings.Repeat("n", 33), "a\u0085b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := shared.NormalizeName(in)
		if err != nil {
			if shared.ErrorCode(err) != shared.CodeInvalidName {
				t.Fatalf("wrong code for %q: %v", in, err)
			}
			return
		}
		if out == "" || out != strings.TrimSpace(out) || utf8.RuneCountInString(out) > shared.MaxNameRunes {
			t.Fatalf("accepted bad name %q from %q", out, in)
		}
		if again, err := shared.NormalizeName(out); err != nil || again != out {
			t.Fatalf("not idempotent: %q -> %q, %v", out, again, err)
		}
	})
}

// FuzzValidateRoom holds the hand-written room check to the pattern it
// replaced.
func FuzzValidateRoom(f *testing.F) {
	for _, s := range []string{"lobby", "a", "-a", "_a", "a-b_c", "A", "", strings.Repeat("a", 64), strings.Repeat("a", 65), "é", "a b"} {
		f.Add(s)
	}
	pattern := regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := shared.ValidateRoom(s) == nil, pattern.MatchString(s); got != want {
			t.Fatalf("%q: valid %v, pattern says %v", s, got, want)
		}
	})
}
