package shared_test

import (
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"golang.org/x/text/unicode/norm"

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
		"e\u0301mile":           "\u00e9mile",    // NFC: one é, not e + combining acute
		"❤\ufe0f fan":           "❤\ufe0f fan",   // a variation selector after its character
		"می\u200cخواهم":         "می\u200cخواهم", // Persian needs ZWNJ between letters
		"1\ufe0f\u20e3":         "1\ufe0f\u20e3", // keycap
	} {
		got, err := shared.NormalizeName(in)
		require.NoError(t, err, "%q", in)
		require.Equal(t, want, got)
	}
	for _, bad := range []string{"", "   ", strings.Repeat("名", 33), "a\x00b", "a\nb", "bell\a", "\xff",
		// Seen accepted while alice was present (issue 8).
		"alice\u200b", "\ufeffalice", "\u202eecila", "\u200b", "\u2800", "\u3164", "\u200b\u200b\u200b",
		// Other invisible and direction-changing characters.
		"a\u2066b\u2069", "\u2067x", "x\u2068", "a\u200eb", "a\u200fb", "a\u061cb", "a\u00adb", "a\u2060b",
		"\u115f", "\u1160x", "\uffa0", "x\u180e", "a\u034fb", "\ufe0f", "\ufe0fa", "\U000E0100",
		"\u200d", "a\u200d", "\u200db", "a\u200d\u200db", "\u200c", "a\u2028b", "a\u2029b", "\ufffc",
		"a" + strings.Repeat("\u0301", 10), "\u0301",
	} {
		_, err := shared.NormalizeName(bad)
		require.Equal(t, shared.CodeInvalidName, shared.ErrorCode(err), "%q", bad)
	}
}

func TestNameKey(t *testing.T) {
	key := func(s string) string {
		t.Helper()
		n, err := shared.NormalizeName(s)
		require.NoError(t, err, "%q", s)
		return shared.NameKey(n)
	}
	alice := key("alice")
	for _, same := range []string{"alice", "Alice", "ALICE", "\u0430lice" /* Cyrillic а */, "ａｌｉｃｅ" /* fullwidth */, "a1ice",
		"al\u0456ce" /* Cyrillic і */, " alice ", "ali\u200dce" /* a joiner between letters draws nothing */} {
		require.Equal(t, alice, key(same), "%q looks like alice", same)
	}
	for _, other := range []string{"alicia", "bob", "alice2", "小明", "👩\u200d💻 dev"} {
		require.NotEqual(t, alice, key(other), "%q", other)
	}
	require.Equal(t, key("big  bob"), key("big bob"), "runs of spaces are one")
	require.Equal(t, key("e\u0301mile"), key("\u00e9mile"))
	// Case is folded before the skeleton is taken, so capital I is the
	// capital of i here, not the look-alike of l that UTS #39 makes it:
	// the two readings cannot both hold.
	require.Equal(t, key("Ian"), key("ian"))
}

func TestNormalizeText(t *testing.T) {
	for in, want := range map[string]string{
		"hi":                              "hi",
		"  padded  ":                      "  padded  ",
		"line1\r\nline2\rline3\n\tx":      "line1\nline2\nline3\n\tx",
		"你好，世界 🎉":                         "你好，世界 🎉",
		strings.Repeat("字", 2000):         strings.Repeat("字", 2000),
		"a" + strings.Repeat("\u0301", 8): "a" + strings.Repeat("\u0301", 8),
		"Tiếng Việt \u202eRTL":            "Tiếng Việt \u202eRTL", // the UI isolates direction; text keeps it
	} {
		got, err := shared.NormalizeText(in)
		require.NoError(t, err, "%q", in)
		require.Equal(t, want, got)
	}
	for in, code := range map[string]string{
		"":                                   shared.CodeTextEmpty,
		" \n\t\r\n ":                         shared.CodeTextEmpty,
		"\u3000":                             shared.CodeTextEmpty,
		strings.Repeat("字", 2001):            shared.CodeTextTooLong,
		"a\x00b":                             shared.CodeTextInvalid,
		"esc\x1b[31m":                        shared.CodeTextInvalid,
		"\xc3\x28":                           shared.CodeTextInvalid,
		"del\x7f":                            shared.CodeTextInvalid,
		"\u200b\u200b":                       shared.CodeTextEmpty, // invisible only (issue 8)
		"\ufeff \u2800\n\u3164":              shared.CodeTextEmpty,
		"\u202e\u2066":                       shared.CodeTextEmpty,
		"a" + strings.Repeat("\u0301", 1999): shared.CodeTextInvalid, // Zalgo
		"a" + strings.Repeat("\u0301", 9):    shared.CodeTextInvalid,
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
	for _, s := range []string{"hi", "", " ", "a\r\nb", "\x00", "你好", "\xff\xfe", strings.Repeat("x", 2001), "\t\n", "🎉\u200d",
		"\u200b", "\u2800\u3164", "a" + strings.Repeat("\u0301", 9), "a\u0301\u0302 b\u0301", "\u202eabc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := shared.NormalizeText(in)
		// What the rules say of in, worked out here independently: the
		// text as stored (line ends made \n, nothing else changed) and
		// whether each rule holds.
		lf := strings.ReplaceAll(strings.ReplaceAll(in, "\r\n", "\n"), "\r", "\n")
		controls := strings.IndexFunc(lf, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }) >= 0
		good := utf8.ValidString(in) && utf8.RuneCountInString(lf) <= shared.MaxTextRunes && !controls &&
			hasVisible(lf) && longestMarkRun(lf) <= shared.MaxMarksInRow
		if err != nil {
			if code := shared.ErrorCode(err); code != shared.CodeTextEmpty && code != shared.CodeTextTooLong && code != shared.CodeTextInvalid {
				t.Fatalf("wrong code for %q: %v", in, err)
			}
			if good {
				t.Fatalf("refused a text every rule allows, %q: %v", in, err)
			}
			return
		}
		if !good || out != lf {
			t.Fatalf("accepted %q as %q: not valid UTF-8, over %d runes, a control character, nothing visible, over %d marks in a row, or changed beyond its line ends",
				in, out, shared.MaxTextRunes, shared.MaxMarksInRow)
		}
		again, err := shared.NormalizeText(out)
		if err != nil || again != out {
			t.Fatalf("not idempotent: %q -> %q, %v", out, again, err)
		}
	})
}

// FuzzNormalizeName does the same for display names.
func FuzzNormalizeName(f *testing.F) {
	for _, s := range []string{"alice", " 小明 ", "", "\x00", strings.Repeat("n", 33), "a\u0085b", "alice\u200b", "\u0430lice",
		"\ufeffalice", "\u202eecila", "\u2800", "\u3164", "👩\u200d💻", "a\u200d", "❤\ufe0f", "\ufe0f", "e\u0301", "ａｌｉｃｅ"} {
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
		if out == "" || out != strings.TrimSpace(out) || utf8.RuneCountInString(out) > shared.MaxNameRunes ||
			!norm.NFC.IsNormalString(out) || !hasVisible(out) || longestMarkRun(out) > shared.MaxMarksInRow {
			t.Fatalf("accepted bad name %q from %q", out, in)
		}
		// No control character, line or paragraph separator, and no bidi
		// control: a name must not turn the rest of its line around.
		if i := strings.IndexFunc(out, func(r rune) bool {
			return unicode.In(r, unicode.Cc, unicode.Zl, unicode.Zp, unicode.Bidi_Control)
		}); i >= 0 {
			t.Fatalf("accepted %q with a control, separator or bidi control at byte %d", out, i)
		}
		// The name is what was sent, trimmed and in NFC; nothing else
		// changes (no replacement characters, no case folding).
		if out != norm.NFC.String(strings.TrimSpace(in)) {
			t.Fatalf("accepted %q as %q: changed beyond trimming and NFC", in, out)
		}
		// Nothing that draws nothing stands alone: the only invisible
		// characters left are joiners and variation selectors, each right
		// after a visible character or another selector.
		runes := []rune(out)
		for i, r := range runes {
			if unicode.In(r, unicode.Cf, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point) || r == '\u2800' {
				if (r != '\u200c' && r != '\u200d' && !unicode.Is(unicode.Variation_Selector, r)) || i == 0 {
					t.Fatalf("accepted %q with invisible U+%04X at %d", out, r, i)
				}
			}
		}
		// The key is a function of what the name looks like: the same for
		// the name in NFD, in capitals of its lower case, padded, and never
		// carrying an invisible character.
		key := shared.NameKey(out)
		if shared.NameKey(norm.NFD.String(out)) != key || shared.NameKey(" "+out+" ") != key {
			t.Fatalf("key of %q changes with its spelling", out)
		}
		if strings.IndexFunc(key, func(r rune) bool { return unicode.In(r, unicode.Cf, unicode.Variation_Selector) }) >= 0 {
			t.Fatalf("key of %q carries an invisible character: %q", out, key)
		}
		if again, err := shared.NormalizeName(out); err != nil || again != out {
			t.Fatalf("not idempotent: %q -> %q, %v", out, again, err)
		}
	})
}

func hasVisible(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool {
		return unicode.In(r, unicode.L, unicode.N, unicode.S, unicode.P) &&
			!unicode.In(r, unicode.Other_Default_Ignorable_Code_Point) && r != '\u2800' && r != '\u115f' && r != '\u1160' && r != '\u3164' && r != '\uffa0' && r != '\ufffc'
	}) >= 0
}

func longestMarkRun(s string) int {
	longest, n := 0, 0
	for _, r := range s {
		if unicode.In(r, unicode.Mn, unicode.Me) {
			n++
			longest = max(longest, n)
		} else {
			n = 0
		}
	}
	return longest
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
