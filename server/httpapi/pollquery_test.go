package httpapi

import (
	"net/url"
	"testing"

	"github.com/parley-chat/parley/shared"
)

// FuzzPollQueryAgreesWithSchema holds the poll's hand-written query parser
// to the answers of the schema decoder that every other endpoint uses:
// same fields, same values, an error for the same inputs.
func FuzzPollQueryAgreesWithSchema(f *testing.F) {
	for _, q := range []string{"", "after=1&epoch=e&wait=25&limit=100&n=3", "after=1&after=2", "after=", "after",
		"AFTER=3", "after=+1", "after=-1", "wait=x&wait=1", "wait=1&wait=x", "epoch=a&epoch=b", "after=1;x",
		"after=%zz&wait=3", "limit=0x10", "limit= 5", "after=01", "wait=9999999999999999999", "epoch=%E4%BD%A0+x",
		"before=18446744073709551615", "&&after=1&=&x", "before=1&after=2", "wait=1&WAIT=2", "epoch=a&Epoch=a", "n=1&n=2&after=3", "after=%zz&after=1"} {
		f.Add(q)
	}
	dec := newDecoder()
	f.Fuzz(func(t *testing.T, raw string) {
		got, gotErr := parsePollQuery(raw)
		var want shared.PollRequest
		values, _ := url.ParseQuery(raw) // what r.URL.Query() gives
		wantErr := decodeValues(dec, &want, values, shared.CodeInvalidParam)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("%q: parser error %v, schema error %v", raw, gotErr, wantErr)
		}
		if gotErr != nil {
			if shared.ErrorCode(gotErr) != shared.CodeInvalidParam {
				t.Fatalf("%q: code %q", raw, shared.ErrorCode(gotErr))
			}
			return
		}
		if !samePtr(got.After, want.After) || !samePtr(got.Before, want.Before) || !samePtr(got.Wait, want.Wait) ||
			!samePtr(got.Limit, want.Limit) || got.Epoch != want.Epoch {
			t.Fatalf("%q: parser %s, schema %s", raw, show(got), show(want))
		}
	})
}

func samePtr[T comparable](a, b *T) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

func show(r shared.PollRequest) string { return r.Query().Encode() + " epoch=" + r.Epoch }

func BenchmarkPollQuery(b *testing.B) {
	const raw = "after=123456&epoch=3f2a9c1b&wait=25&limit=100&n=0-17-42"
	b.Run("parser", func(b *testing.B) {
		for b.Loop() {
			if _, err := parsePollQuery(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("schema", func(b *testing.B) {
		dec := newDecoder()
		for b.Loop() {
			var req shared.PollRequest
			values, _ := url.ParseQuery(raw)
			if err := decodeValues(dec, &req, values, shared.CodeInvalidParam); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestPollQueryRefusesRepeatedFields(t *testing.T) {
	for _, raw := range []string{"after=1&after=2", "after=1&AFTER=1", "wait=1&wait=60", "epoch=a&epoch=b", "limit=5&Limit=6", "before=3&before=3"} {
		_, err := parsePollQuery(raw)
		if shared.ErrorCode(err) != shared.CodeInvalidParam {
			t.Errorf("%q: %v, want invalid_param", raw, err)
		}
		values, _ := url.ParseQuery(raw)
		var req shared.PollRequest
		if err := decodeValues(newDecoder(), &req, values, shared.CodeInvalidParam); shared.ErrorCode(err) != shared.CodeInvalidParam {
			t.Errorf("schema %q: %v, want invalid_param", raw, err)
		}
	}
	if _, err := parsePollQuery("after=1&n=1&n=2"); err != nil {
		t.Errorf("unknown keys may repeat: %v", err)
	}
}
