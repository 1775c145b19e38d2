package shared

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mtibben/confusables"
	"golang.org/x/text/unicode/norm"
)

// Limits shared by the client (which refuses early) and the server (which
// enforces).
const (
	DefaultRoom = "lobby"

	MaxNameRunes       = 32
	MaxTextRunes       = 2000
	MaxClientMsgIDLen  = 64
	DefaultLimit       = 50
	MaxLimit           = 500
	DefaultWaitSeconds = 25
	MaxWaitSeconds     = 60

	// MaxBodyBytes bounds request bodies: MaxTextRunes of 4-byte runes,
	// percent-encoded in a form (×3), plus room for the other fields.
	MaxBodyBytes = 32 << 10

	// PresenceGrace is how long a session stays present in a room after its
	// last poll there ended: a client between two polls is still here.
	PresenceGrace = 30 * time.Second

	// LegacyWait is how long GET /get_msg/ holds a request, as in the textbook.
	LegacyWait = 10 * time.Second

	// LegacyRoom is the room the textbook endpoints read and write.
	LegacyRoom = DefaultRoom
)

// ValidateRoom reports whether name is a valid room name: 1-64 of a-z, 0-9,
// _ and -, starting with a letter or digit. It runs on every poll, so it is
// a loop rather than a regular expression.
func ValidateRoom(name string) error {
	ok := len(name) >= 1 && len(name) <= 64
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || i > 0 && (c == '_' || c == '-')
	}
	if !ok {
		return Errorf(CodeInvalidRoom, "room must be 1-64 of a-z, 0-9, _ and -, starting with a letter or digit")
	}
	return nil
}

// MaxMarksInRow bounds the combining marks that may follow one base
// character. Real scripts stack at most a few (Vietnamese two, Tibetan and
// Indic a handful); "Zalgo" text stacks thousands, which draws over the lines
// around it and costs the browser layout time.
const MaxMarksInRow = 8

// NormalizeName trims a display name, puts it in Unicode NFC form and checks
// it: 1–32 runes of valid UTF-8 with at least one visible character, and none
// that are invisible or reorder text (controls, format and bidi controls,
// fillers and blanks), so that a name always looks like what it is and two
// names that look alike can be told apart by NameKey.
func NormalizeName(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", Errorf(CodeInvalidName, "name is not valid UTF-8")
	}
	// NFC first: normalising can change what TrimSpace sees at the ends.
	name = strings.TrimSpace(norm.NFC.String(name))
	n := utf8.RuneCountInString(name)
	switch {
	case n == 0:
		return "", Errorf(CodeInvalidName, "name is empty")
	case n > MaxNameRunes:
		return "", Errorf(CodeInvalidName, "name is longer than %d characters", MaxNameRunes)
	}
	var visible bool
	var marks markRun
	prev := rune(-1)
	for i, r := range name {
		switch {
		case unicode.IsControl(r):
			return "", Errorf(CodeInvalidName, "name contains a control character")
		case r == zwj || r == zwnj:
			// Joiners are part of emoji sequences (👩‍💻) and of Persian and
			// Indic spelling, so they may stand between two visible
			// characters, never at an end or next to another invisible one.
			next, _ := utf8.DecodeRuneInString(name[i+utf8.RuneLen(r):])
			if prev < 0 || !isVisible(prev) && !isVariationSelector(prev) || next == utf8.RuneError || !isVisible(next) {
				return "", Errorf(CodeInvalidName, "name contains an invisible character (U+%04X) outside a joined sequence", r)
			}
		case isVariationSelector(r):
			// A variation selector chooses how the character before it is
			// drawn (❤️); alone it is invisible.
			if prev < 0 || !isVisible(prev) {
				return "", Errorf(CodeInvalidName, "name contains a variation selector that follows no character")
			}
		case isInvisible(r):
			return "", Errorf(CodeInvalidName, "name contains an invisible or direction-changing character (U+%04X)", r)
		case unicode.In(r, unicode.Zl, unicode.Zp):
			return "", Errorf(CodeInvalidName, "name contains a line break")
		}
		if !marks.add(r) {
			return "", Errorf(CodeInvalidName, "name stacks more than %d combining marks on one character", MaxMarksInRow)
		}
		visible = visible || isVisible(r)
		prev = r
	}
	if !visible {
		return "", Errorf(CodeInvalidName, "name has no visible character")
	}
	return name, nil
}

// NameKey is the key under which a normalised name is unique: two names
// with the same key look alike, so one cannot be taken while the other is
// in use. It is the Unicode confusables skeleton (UTS #39, section 4) of the
// name compatibility-decomposed (NFKC: "ａｌｉｃｅ" is "alice") and
// case-folded, with joiners and variation selectors dropped and runs of
// spaces made one: "Alice", "аlice" (Cyrillic а), "ALIСE" and "alice "
// share a key.
func NameKey(name string) string {
	folded := strings.Map(func(r rune) rune {
		if r == zwj || r == zwnj || isVariationSelector(r) || isInvisible(r) {
			return -1
		}
		return unicode.ToLower(r)
	}, norm.NFKC.String(name))
	// The skeleton maps to prototypes that may be capitals ("l" and "I"
	// have one between them), so fold again after it.
	key := strings.ToLower(confusables.Skeleton(folded))
	return strings.Join(strings.Fields(key), " ")
}

// markRun counts the combining marks in a row.
type markRun int

// add counts r and reports whether the run is still within MaxMarksInRow.
func (m *markRun) add(r rune) bool {
	if !unicode.In(r, unicode.Mn, unicode.Me) {
		*m = 0
		return true
	}
	*m++
	return *m <= MaxMarksInRow
}

const (
	zwnj = '\u200C'
	zwj  = '\u200D'
)

// invisible lists what draws nothing, or changes the direction of what
// follows, beyond the format characters (Cf) and the default-ignorable code
// points Unicode names: blanks that are letters or symbols by category.
var invisible = &unicode.RangeTable{
	R16: []unicode.Range16{
		{Lo: 0x115F, Hi: 0x1160, Stride: 1}, // Hangul choseong and jungseong fillers
		{Lo: 0x2800, Hi: 0x2800, Stride: 1}, // braille pattern blank
		{Lo: 0x3164, Hi: 0x3164, Stride: 1}, // Hangul filler
		{Lo: 0xFFA0, Hi: 0xFFA0, Stride: 1}, // halfwidth Hangul filler
		{Lo: 0xFFFC, Hi: 0xFFFC, Stride: 1}, // object replacement character
	},
}

// isInvisible reports whether r draws nothing or reorders text: format
// characters (which include the bidi controls U+200E/F, U+202A–E and
// U+2066–9, and U+200B, U+2060 and U+FEFF), other default-ignorable code
// points, variation selectors and the blanks above.
func isInvisible(r rune) bool {
	return unicode.In(r, unicode.Cf, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector, invisible)
}

func isVariationSelector(r rune) bool { return unicode.Is(unicode.Variation_Selector, r) }

// isVisible reports whether r draws something by itself: a letter, number,
// symbol or punctuation character that is not one of the blanks.
func isVisible(r rune) bool {
	return unicode.In(r, unicode.L, unicode.N, unicode.S, unicode.P) && !isInvisible(r)
}

// NormalizeText canonicalises line ends (browsers send textarea newlines as
// CRLF in forms) and checks message text: valid UTF-8, 1–2000 runes, at least
// one visible character (whitespace and invisible characters alone are
// empty), no control characters but newline and tab, and no more than
// MaxMarksInRow combining marks on one character.
func NormalizeText(text string) (string, error) {
	if !utf8.ValidString(text) {
		return "", Errorf(CodeTextInvalid, "text is not valid UTF-8")
	}
	if strings.Contains(text, "\r") {
		text = strings.ReplaceAll(text, "\r\n", "\n")
		text = strings.ReplaceAll(text, "\r", "\n")
	}
	if n := utf8.RuneCountInString(text); n > MaxTextRunes {
		return "", Errorf(CodeTextTooLong, "text is %d characters; the limit is %d", n, MaxTextRunes)
	}
	var visible bool
	var marks markRun
	for _, r := range text {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return "", Errorf(CodeTextInvalid, "text contains control character U+%04X", r)
		}
		if !marks.add(r) {
			return "", Errorf(CodeTextInvalid, "text stacks more than %d combining marks on one character", MaxMarksInRow)
		}
		visible = visible || isVisible(r)
	}
	if !visible {
		return "", Errorf(CodeTextEmpty, "text is empty")
	}
	return text, nil
}

// Normalize validates the request and canonicalises its name.
func (r *SessionRequest) Normalize() error {
	name, err := NormalizeName(r.Name)
	if err != nil {
		return err
	}
	r.Name = name
	return nil
}

// Normalize validates the request and canonicalises its text.
func (r *SendRequest) Normalize() error {
	text, err := NormalizeText(r.Text)
	if err != nil {
		return err
	}
	r.Text = text
	if len(r.ClientMsgID) > MaxClientMsgIDLen {
		return Errorf(CodeClientMsgIDTooLong, "client_msg_id is longer than %d bytes", MaxClientMsgIDLen)
	}
	for _, c := range r.ClientMsgID {
		if c < 0x21 || c > 0x7e {
			return Errorf(CodeBadRequest, "client_msg_id must be printable ASCII")
		}
	}
	return nil
}

// Validate checks the ranges of a poll's parameters.
func (r *PollRequest) Validate() error {
	if r.After != nil && r.Before != nil {
		return Errorf(CodeInvalidParam, "after and before cannot be used together")
	}
	if r.Before != nil && *r.Before == 0 {
		return Errorf(CodeInvalidParam, "before must be at least 1")
	}
	if r.Wait != nil && (*r.Wait < 0 || *r.Wait > MaxWaitSeconds) {
		return Errorf(CodeInvalidParam, "wait must be 0-%d seconds", MaxWaitSeconds)
	}
	if r.Limit != nil && (*r.Limit < 1 || *r.Limit > MaxLimit) {
		return Errorf(CodeInvalidParam, "limit must be 1-%d", MaxLimit)
	}
	if len(r.Epoch) > 64 {
		return Errorf(CodeInvalidParam, "epoch is too long")
	}
	return nil
}

// WaitDuration is the poll's wait with the default applied.
func (r *PollRequest) WaitDuration() time.Duration {
	if r.Wait == nil {
		return DefaultWaitSeconds * time.Second
	}
	return time.Duration(*r.Wait) * time.Second
}

// LimitOrDefault is the poll's limit with the default applied.
func (r *PollRequest) LimitOrDefault() int {
	if r.Limit == nil {
		return DefaultLimit
	}
	return *r.Limit
}
