// Package shared holds the wire types, limits and validation that the Parley
// server and the go-app client both use, so the browser and the server agree on
// what is valid by construction.
package shared

import (
	"net/url"
	"strconv"
	"time"
)

// Kind says what a Message records.
type Kind string

// Message kinds. Join and leave are logged by the server when presence
// changes; only text is written by clients.
const (
	KindText  Kind = "text"
	KindJoin  Kind = "join"
	KindLeave Kind = "leave"
)

// Message is one entry of a room's log. Seq is dense per room (1, 2, 3 …) and
// only meaningful together with the room's epoch.
type Message struct {
	Seq         uint64    `json:"seq"`
	Room        string    `json:"room"`
	Kind        Kind      `json:"kind"`
	Author      string    `json:"author"`
	Text        string    `json:"text"`
	SentAt      time.Time `json:"sent_at"`
	ClientMsgID string    `json:"client_msg_id,omitempty"`
	// Via says how a message came in when not through the API: ViaTextbook
	// for the textbook's POST /send_msg/, whose author is a name typed by
	// anyone rather than a session's, so the UI can show it differently.
	Via string `json:"via,omitempty"`
}

// ViaTextbook marks a message posted through the textbook's /send_msg/.
const ViaTextbook = "textbook"

// SessionRequest is the body of POST /api/session.
type SessionRequest struct {
	Name string `json:"name" schema:"name"`
}

// SessionResponse answers POST /api/session.
type SessionResponse struct {
	Token string `json:"token"`
	Name  string `json:"name"`
}

// SendRequest is the body of POST /api/rooms/{room}/messages.
type SendRequest struct {
	Text        string `json:"text" schema:"text"`
	ClientMsgID string `json:"client_msg_id,omitempty" schema:"client_msg_id"`
}

// PollRequest is the query of GET /api/rooms/{room}/messages. Nil pointers
// mean "not given", which differs from zero for every field.
type PollRequest struct {
	After *uint64 `schema:"after"`
	// Before asks for one page of history older than this seq; it never waits.
	Before *uint64 `schema:"before"`
	Epoch  string  `schema:"epoch"`
	// Wait is in seconds; 0 makes a short poll.
	Wait  *int `schema:"wait"`
	Limit *int `schema:"limit"`
}

// PollResponse answers GET /api/rooms/{room}/messages.
type PollResponse struct {
	Room     string    `json:"room"`
	Epoch    string    `json:"epoch"`
	Messages []Message `json:"messages"`
	// Next is the cursor to send as after in the next poll.
	Next uint64 `json:"next"`
	// Gap is true when messages after the cursor are no longer retained.
	Gap bool `json:"gap"`
	// Reset is true when the cursor's epoch is not the room's: the client must
	// drop what it shows and start again from Messages.
	Reset bool `json:"reset"`
}

// Member is one session present in a room.
type Member struct {
	Name  string    `json:"name"`
	Since time.Time `json:"since"`
}

// MembersResponse answers GET /api/rooms/{room}/members.
type MembersResponse struct {
	Room    string   `json:"room"`
	Members []Member `json:"members"`
}

// LegacyMessage answers the textbook's GET /get_msg/.
type LegacyMessage struct {
	Status bool   `json:"status"`
	Msg    string `json:"msg"`
}

// Query encodes r as URL query parameters, the inverse of the server's
// decoding.
func (r PollRequest) Query() url.Values {
	q := url.Values{}
	if r.After != nil {
		q.Set("after", strconv.FormatUint(*r.After, 10))
	}
	if r.Before != nil {
		q.Set("before", strconv.FormatUint(*r.Before, 10))
	}
	if r.Epoch != "" {
		q.Set("epoch", r.Epoch)
	}
	if r.Wait != nil {
		q.Set("wait", strconv.Itoa(*r.Wait))
	}
	if r.Limit != nil {
		q.Set("limit", strconv.Itoa(*r.Limit))
	}
	return q
}

// Ptr returns a pointer to v, for the optional fields of PollRequest.
func Ptr[T any](v T) *T { return &v }
