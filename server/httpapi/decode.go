package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gorilla/schema"

	"github.com/parley-chat/parley/shared"
)

// newDecoder returns a schema decoder for query strings and forms: unknown
// keys are ignored because browsers add cache-busting parameters.
func newDecoder() *schema.Decoder {
	d := schema.NewDecoder()
	d.IgnoreUnknownKeys(true)
	return d
}

// request is a shared request type: it validates and canonicalises itself,
// the same way in the browser and here.
type request interface{ Normalize() error }

// decodeRequest reads the body into req and normalises it.
func (s *Server) decodeRequest(w http.ResponseWriter, r *http.Request, req request) error {
	if err := decodeBody(w, r, s.dec, req); err != nil {
		return err
	}
	return req.Normalize()
}

// decodeBody reads a JSON or form body into dst, bounded by MaxBodyBytes.
func decodeBody(w http.ResponseWriter, r *http.Request, dec *schema.Decoder, dst any) error {
	r.Body = http.MaxBytesReader(w, r.Body, shared.MaxBodyBytes)
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil && r.Header.Get("Content-Type") != "" {
		return shared.Errorf(shared.CodeUnsupportedType, "cannot parse Content-Type")
	}
	switch ct {
	case "application/json":
		// encoding/json replaces invalid UTF-8 inside strings with U+FFFD
		// and says nothing, so a text would be stored other than it was
		// sent: check the bytes first and refuse them instead.
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			return bodyError(err, "cannot read body")
		}
		if !utf8.Valid(raw) || loneSurrogate(raw) {
			return shared.Errorf(invalidUTF8Code(dst), "body is not valid UTF-8")
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return shared.Errorf(shared.CodeBadRequest, "body is not valid JSON for this request: %v", err)
		}
		return nil
	case "application/x-www-form-urlencoded", "multipart/form-data":
		var form url.Values
		if ct == "multipart/form-data" {
			err = r.ParseMultipartForm(shared.MaxBodyBytes)
			if r.MultipartForm != nil {
				form = r.MultipartForm.Value
				defer func() { _ = r.MultipartForm.RemoveAll() }()
			}
		} else {
			err = r.ParseForm()
			form = r.PostForm
		}
		if err != nil {
			return bodyError(err, "body is not a valid form")
		}
		return decodeValues(dec, dst, form, shared.CodeBadRequest)
	default:
		return shared.Errorf(shared.CodeUnsupportedType, "send application/json or application/x-www-form-urlencoded, not %q", ct)
	}
}

// loneSurrogate reports whether a JSON text escapes half a UTF-16 surrogate
// pair ("\ud800" alone), which encoding/json, like invalid bytes, silently
// turns into U+FFFD. Backslashes appear only inside strings in valid JSON
// (invalid JSON is refused by the decoder anyway), so no string state is
// kept: each escape is read from its backslash.
func loneSurrogate(raw []byte) bool {
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		if i+1 < len(raw) && raw[i+1] != 'u' {
			i++ // a two-byte escape: \\, \", \n …
			continue
		}
		r, ok := hex4(raw, i+2)
		switch {
		case !ok:
			return false // malformed: the decoder will say so
		case 0xDC00 <= r && r <= 0xDFFF:
			return true // a low half first
		case 0xD800 <= r && r <= 0xDBFF:
			low, ok := rune(0), i+7 < len(raw) && raw[i+6] == '\\' && raw[i+7] == 'u'
			if ok {
				low, ok = hex4(raw, i+8)
			}
			if !ok || low < 0xDC00 || low > 0xDFFF {
				return true
			}
			i += 11
		default:
			i += 5
		}
	}
	return false
}

// hex4 reads the four hex digits at raw[at:].
func hex4(raw []byte, at int) (rune, bool) {
	if at+4 > len(raw) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(raw[at:at+4]), 16, 32)
	return rune(n), err == nil
}

// invalidUTF8Code is the code for a body that is not UTF-8: the code its
// Normalize gives a string field that is not, so JSON and forms agree.
func invalidUTF8Code(dst any) string {
	if _, ok := dst.(*shared.SessionRequest); ok {
		return shared.CodeInvalidName
	}
	return shared.CodeTextInvalid
}

// decodeValues decodes a query or form into dst, refusing a field of dst
// given twice (in any case: schema matches keys case-insensitively), where
// one reader would take the first and another the last.
func decodeValues(dec *schema.Decoder, dst any, v url.Values, code string) error {
	for _, field := range schemaFields(dst) {
		n := 0
		for k, vs := range v {
			if strings.EqualFold(k, field) {
				n += len(vs)
			}
		}
		if n > 1 {
			if code == shared.CodeInvalidParam {
				return duplicated(field)
			}
			return shared.Errorf(code, "%s is given more than once", field)
		}
	}
	if err := dec.Decode(dst, v); err != nil {
		var multi schema.MultiError
		if errors.As(err, &multi) {
			for field, e := range multi {
				return shared.Errorf(code, "%s: %s", field, describe(e))
			}
		}
		return shared.Errorf(code, "%v", err)
	}
	return nil
}

// schemaFields lists the schema names of the fields of the struct dst
// points to.
func schemaFields(dst any) []string {
	t := reflect.TypeOf(dst)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for f := range t.Fields() {
		if name, _, _ := strings.Cut(f.Tag.Get("schema"), ","); name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

func describe(err error) string {
	var conv schema.ConversionError
	if errors.As(err, &conv) {
		return "not a valid number"
	}
	return err.Error()
}

// bodyError is the answer to a body that could not be read or parsed.
func bodyError(err error, what string) error {
	var ne net.Error
	switch {
	case tooLarge(err):
		return bodyTooLarge()
	case errors.As(err, &ne) && ne.Timeout():
		// Said plainly, without the connection's addresses that the
		// network error carries.
		return shared.Errorf(shared.CodeBadRequest, "the body did not arrive within the read timeout")
	}
	return shared.Errorf(shared.CodeBadRequest, "%s: %v", what, err)
}

func tooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe) || strings.Contains(err.Error(), "request body too large")
}

func bodyTooLarge() error {
	return shared.Errorf(shared.CodeBodyTooLarge, "body is larger than %d bytes", shared.MaxBodyBytes)
}

// bearer returns the token of an Authorization: Bearer header, and whether
// the header was present at all.
func bearer(r *http.Request) (token string, present bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", true
	}
	return strings.TrimSpace(tok), true
}
