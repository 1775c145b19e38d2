package loadkit

import (
	"errors"
	"unicode/utf8"
)

// PollView is a Parley poll answer read without reflection and without
// allocating once its slices have grown: Epoch and Texts point into the
// body they were read from, and stay valid until that body is reused.
//
// A load client on the same two cores as the server pays for every answer
// it reads out of the CPU the server could have had. Nchan's clients read
// a plain body; with encoding/json, reading Parley's answer cost the load
// tool about 70% more CPU per answer than reading Nchan's, which counted
// against Parley in every figure the two share the machine for.
type PollView struct {
	Epoch []byte
	Seqs  []uint64
	Texts [][]byte
	Next  uint64
	Gap   bool
	Reset bool
}

// ErrUnusual says that Decode did not read an answer because it is not in
// the plain form Parley writes; encoding/json reads it (into LeanPoll) with
// the same meaning, just slower.
var ErrUnusual = errors.New("loadkit: poll answer not in its plain form")

// Decode reads b, which must be one JSON object, into v. It accepts what
// encoding/json writes for shared.PollResponse, in any key order and with
// keys it does not know, and returns ErrUnusual wherever its reading could
// differ from encoding/json's (a kept string with escapes or invalid UTF-8,
// null for a kept value, a key encoding/json would match in another case or
// after unescaping), and for any invalid JSON. So when Decode succeeds,
// encoding/json would read the same values into LeanPoll (fuzzed).
func (v *PollView) Decode(b []byte) error {
	*v = PollView{Seqs: v.Seqs[:0], Texts: v.Texts[:0]}
	s := scanner{b: b}
	seenMessages := false
	if !s.object(func(key []byte) bool {
		switch string(key) {
		case "epoch":
			e, ok := s.keptString()
			v.Epoch = e
			return ok
		case "messages":
			// A second list would be read into the first one's elements
			// by encoding/json, keeping fields the second leaves out.
			if seenMessages {
				return false
			}
			seenMessages = true
			return s.messages(v)
		case "next":
			n, ok := s.uint()
			v.Next = n
			return ok
		case "gap":
			g, ok := s.boolean()
			v.Gap = g
			return ok
		case "reset":
			r, ok := s.boolean()
			v.Reset = r
			return ok
		}
		return s.unknown(key, "epoch", "messages", "next", "gap", "reset")
	}) {
		return ErrUnusual
	}
	s.ws()
	if s.i != len(b) {
		return ErrUnusual
	}
	return nil
}

func (s *scanner) messages(v *PollView) bool {
	if s.lit("null") {
		return true // encoding/json writes a nil slice so
	}
	return s.array(func() bool {
		var seq uint64
		var text []byte
		if !s.object(func(key []byte) bool {
			var ok bool
			switch string(key) {
			case "seq":
				seq, ok = s.uint()
				return ok
			case "text":
				text, ok = s.keptString()
				return ok
			}
			return s.unknown(key, "seq", "text")
		}) {
			return false
		}
		v.Seqs = append(v.Seqs, seq)
		v.Texts = append(v.Texts, text)
		return true
	})
}

// scanner reads JSON from b at i. Each method reports whether what it read
// is valid and plain; false ends the decoding with ErrUnusual.
type scanner struct {
	b []byte
	i int
}

// maxDepth bounds the nesting of skipped values.
const maxDepth = 64

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// object reads an object, calling member for each key with s just past
// the key's colon; member reads the value.
func (s *scanner) object(member func(key []byte) bool) bool {
	s.ws()
	return s.list('{', '}', func() bool {
		key, escaped, ok := s.str()
		if !ok || escaped {
			return false // an escaped key might name a kept field
		}
		s.ws()
		if !s.eat(':') {
			return false
		}
		s.ws()
		return member(key)
	})
}

// array reads an array, calling elem to read each element.
func (s *scanner) array(elem func() bool) bool { return s.list('[', ']', elem) }

// list reads start, items separated by commas, and end.
func (s *scanner) list(start, end byte, item func() bool) bool {
	if !s.eat(start) {
		return false
	}
	s.ws()
	if s.eat(end) {
		return true
	}
	for {
		s.ws()
		if !item() {
			return false
		}
		s.ws()
		if s.eat(end) {
			return true
		}
		if !s.eat(',') {
			return false
		}
	}
}

// unknown skips the value of key, which is none of known, unless
// encoding/json would take it for one of them: it matches keys without
// regard to case, Unicode's included.
func (s *scanner) unknown(key []byte, known ...string) bool {
	for _, c := range key {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	for _, k := range known {
		if asciiEqualFold(key, k) {
			return false
		}
	}
	return s.skip(0)
}

// str reads a string and returns what is between its quotes, and whether
// it holds an escape.
func (s *scanner) str() (raw []byte, escaped, ok bool) {
	if !s.eat('"') {
		return nil, false, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			raw = s.b[start:s.i]
			s.i++
			return raw, escaped, true
		case c < 0x20:
			return nil, false, false
		case c == '\\':
			escaped = true
			if !s.escape() {
				return nil, false, false
			}
		default:
			s.i++
		}
	}
	return nil, false, false
}

// escape checks the escape at i and steps over it.
func (s *scanner) escape() bool {
	if s.i+1 >= len(s.b) {
		return false
	}
	switch s.b[s.i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.i += 2
		return true
	case 'u':
		if s.i+6 > len(s.b) {
			return false
		}
		for _, c := range s.b[s.i+2 : s.i+6] {
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
		s.i += 6
		return true
	}
	return false
}

// keptString reads a string whose bytes are its value: no escapes, valid
// UTF-8 (encoding/json would replace invalid bytes).
func (s *scanner) keptString() ([]byte, bool) {
	raw, escaped, ok := s.str()
	if !ok || escaped || !utf8.Valid(raw) {
		return nil, false
	}
	return raw, true
}

// uint reads a non-negative integer that fits uint64, written without
// fraction or exponent, as encoding/json accepts into a uint64.
func (s *scanner) uint() (uint64, bool) {
	start := s.i
	var n uint64
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		d := uint64(s.b[s.i] - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
		s.i++
	}
	digits := s.i - start
	if digits == 0 || digits > 1 && s.b[start] == '0' {
		return 0, false
	}
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	return n, true
}

func (s *scanner) boolean() (bool, bool) {
	switch {
	case s.lit("true"):
		return true, true
	case s.lit("false"):
		return false, true
	}
	return false, false
}

func (s *scanner) lit(word string) bool {
	if len(s.b)-s.i >= len(word) && string(s.b[s.i:s.i+len(word)]) == word {
		s.i += len(word)
		return true
	}
	return false
}

// skip checks and steps over any JSON value.
func (s *scanner) skip(depth int) bool {
	if depth > maxDepth {
		return false
	}
	s.ws()
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, _, ok := s.str()
		return ok
	case c == '{':
		return s.object(func([]byte) bool { return s.skip(depth + 1) })
	case c == '[':
		return s.array(func() bool { return s.skip(depth + 1) })
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	}
	return s.lit("true") || s.lit("false") || s.lit("null")
}

// number steps over a number as JSON's grammar has it.
func (s *scanner) number() bool {
	s.eat('-')
	digits := func() int {
		n := 0
		for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	switch {
	case s.eat('0'):
	case digits() == 0:
		return false
	}
	if s.eat('.') && digits() == 0 {
		return false
	}
	if s.eat('e') || s.eat('E') {
		if !s.eat('+') {
			s.eat('-')
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}
