package httpapi

import (
	"encoding/json"
	"testing"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
)

// FuzzLoneSurrogate holds loneSurrogate to encoding/json v2, which refuses
// what v1 silently replaces with U+FFFD: for any JSON string v1 accepts,
// v2 refuses it exactly when its bytes are not UTF-8 or it escapes half a
// surrogate pair.
func FuzzLoneSurrogate(f *testing.F) {
	for _, s := range []string{`"a"`, `"\ud800"`, `"\udc00"`, `"\ud83d\ude00"`, `"\ud83d\u0041"`, `"\\ud800"`, `"\\\ud800"`,
		`"\ud83d"`, `"x\ud83d\ude00\ud800"`, `"\uD800\uDC00"`, `"\u00e9\n\t\""`, "\"\xff\"", `"\ud800\\udc00"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		var v1 string
		if json.Unmarshal([]byte(raw), &v1) != nil {
			return
		}
		var v2 string
		refused := jsonv2.Unmarshal([]byte(raw), &v2) != nil
		if got := !utf8.ValidString(raw) || loneSurrogate([]byte(raw)); got != refused {
			t.Fatalf("%q: loneSurrogate or invalid says %v, json v2 refuses: %v", raw, got, refused)
		}
	})
}
