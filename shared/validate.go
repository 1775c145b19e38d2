package shared

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
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

// NormalizeName trims a display name and checks it: 1–32 runes of valid UTF-8
// with no control characters.
func NormalizeName(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", Errorf(CodeInvalidName, "name is not valid UTF-8")
	}
	name = strings.TrimSpace(name)
	n := utf8.RuneCountInString(name)
	switch {
	case n == 0:
		return "", Errorf(CodeInvalidName, "name is empty")
	case n > MaxNameRunes:
		return "", Errorf(CodeInvalidName, "name is longer than %d characters", MaxNameRunes)
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return "", Errorf(CodeInvalidName, "name contains a control character")
		}
	}
	return name, nil
}

// NormalizeText canonicalises line ends (browsers send textarea newlines as
// CRLF in forms) and checks message text: valid UTF-8, 1–2000 runes, not only
// whitespace, no control characters but newline and tab.
func NormalizeText(text string) (string, error) {
	if !utf8.ValidString(text) {
		return "", Errorf(CodeTextInvalid, "text is not valid UTF-8")
	}
	if strings.Contains(text, "\r") {
		text = strings.ReplaceAll(text, "\r\n", "\n")
		text = strings.ReplaceAll(text, "\r", "\n")
	}
	if strings.TrimSpace(text) == "" {
		return "", Errorf(CodeTextEmpty, "text is empty")
	}
	if n := utf8.RuneCountInString(text); n > MaxTextRunes {
		return "", Errorf(CodeTextTooLong, "text is %d characters; the limit is %d", n, MaxTextRunes)
	}
	for _, r := range text {
		if unicode.IsControl(r) && r != '\n' && r != '\t' {
			return "", Errorf(CodeTextInvalid, "text contains control character U+%04X", r)
		}
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
