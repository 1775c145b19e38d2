// Package api is the Parley HTTP client used by the go-app UI. It speaks the
// JSON API of the server with the shared wire types and turns every error
// answer back into a *shared.Error, so callers switch on stable codes.
package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/parley-chat/parley/shared"
)

// Client calls the Parley API. The zero value is not usable: Base must be
// the server's origin (e.g. "http://127.0.0.1:8080"); in the browser that is
// the page's own origin.
type Client struct {
	Base string
	// HTTP is the client used for requests outside the browser; nil means
	// http.DefaultClient. In the browser (js/wasm) requests go to the Fetch
	// API directly, see transport_js.go.
	HTTP *http.Client
	// OnBody, when set, is told the size of every answer's body as it
	// arrives (errors included): the /learn page counts the bytes each of
	// its clients receives.
	OnBody func(n int)
}

// NetError means the server could not be reached or its answer could not be
// read: the request may or may not have been processed.
type NetError struct{ Err error }

func (e *NetError) Error() string { return "network: " + e.Err.Error() }
func (e *NetError) Unwrap() error { return e.Err }

// StatusError is an error answer from the server. It unwraps to the
// *shared.Error decoded from the body.
type StatusError struct {
	Status int
	// RetryAfter is the server's Retry-After, zero when absent.
	RetryAfter time.Duration
	Err        *shared.Error
}

func (e *StatusError) Error() string { return fmt.Sprintf("%d %s", e.Status, e.Err.Error()) }
func (e *StatusError) Unwrap() error { return e.Err }

// BadAnswerError is a success status whose body is empty or not the
// answer asked for: seen when the server's read timeout cut a slow send
// and answered 200 with no body, without storing the message. Whether the
// request took effect is unknown, so it is retried like a lost answer (a
// send with the same client_msg_id, which the server deduplicates), never
// taken as success.
type BadAnswerError struct {
	Status int
	Err    error
}

func (e *BadAnswerError) Error() string {
	return fmt.Sprintf("bad %d answer: %v", e.Status, e.Err)
}
func (e *BadAnswerError) Unwrap() error { return e.Err }

// IsNetwork reports whether err means the server was not reached.
func IsNetwork(err error) bool {
	var ne *NetError
	return errors.As(err, &ne)
}

// Code is the API error code of err, "" for a non-API error.
func Code(err error) string {
	var se *shared.Error
	if errors.As(err, &se) {
		return se.Code
	}
	return ""
}

// RetryAfter is the delay the server asked for in err, zero when none.
func RetryAfter(err error) time.Duration {
	var st *StatusError
	if errors.As(err, &st) {
		return st.RetryAfter
	}
	return 0
}

// Temporary reports whether retrying the same request later may succeed:
// the server was unreachable, overloaded, rate limiting or failing.
func Temporary(err error) bool {
	var bad *BadAnswerError
	if IsNetwork(err) || errors.As(err, &bad) {
		return true
	}
	var st *StatusError
	if errors.As(err, &st) {
		return st.Status == http.StatusTooManyRequests || st.Status >= 500
	}
	return false
}

// Join starts a session: POST /api/session.
func (c *Client) Join(ctx context.Context, name string) (shared.SessionResponse, error) {
	var out shared.SessionResponse
	err := c.do(ctx, http.MethodPost, "/api/session", "", shared.SessionRequest{Name: name}, &out)
	return out, err
}

// Leave ends a session at once: DELETE /api/session.
func (c *Client) Leave(ctx context.Context, token string) error {
	return c.do(ctx, http.MethodDelete, "/api/session", token, nil, nil)
}

// Send posts a message: POST /api/rooms/{room}/messages. A repeated
// ClientMsgID returns the original message instead of a duplicate.
func (c *Client) Send(ctx context.Context, token, room string, req shared.SendRequest) (shared.Message, error) {
	var out shared.Message
	err := c.do(ctx, http.MethodPost, "/api/rooms/"+url.PathEscape(room)+"/messages", token, req, &out)
	if err == nil && out.Seq == 0 {
		// Decoded, but not a stored message (an empty object, say).
		err = &BadAnswerError{Status: http.StatusOK, Err: errors.New("the answer holds no stored message")}
	}
	return out, err
}

// Poll reads messages: GET /api/rooms/{room}/messages. Every call carries a
// fresh nonce parameter because Chromium lets only one request per identical
// URL through at a time (its HTTP cache lock), which would queue two tabs'
// polls behind each other.
func (c *Client) Poll(ctx context.Context, token, room string, req shared.PollRequest) (shared.PollResponse, error) {
	var out shared.PollResponse
	err := c.PollInto(ctx, token, room, req, &out)
	return out, err
}

// PollInto is Poll decoding the answer into out, which may be a struct with
// fewer fields than shared.PollResponse: a load generator decodes only what
// it checks.
func (c *Client) PollInto(ctx context.Context, token, room string, req shared.PollRequest, out any) error {
	q := req.Query()
	q.Set("n", Nonce())
	return c.do(ctx, http.MethodGet, "/api/rooms/"+url.PathEscape(room)+"/messages?"+q.Encode(), token, nil, out)
}

// TextbookHome registers name's cursor on the textbook endpoints at the
// head of room (lobby when ""): GET /home/?name=X. The server answers with
// a redirect to the app, which is not followed.
func (c *Client) TextbookHome(ctx context.Context, room, name string) error {
	q := textbookQuery(room, name)
	return c.send(ctx, request{method: http.MethodGet, path: "/home/?" + q.Encode(), noRedirect: true}, nil)
}

// TextbookGet asks for name's next message in room (lobby when ""): GET
// /get_msg/?name=X, which answers one message, or status false after the
// textbook's 10 s wait.
func (c *Client) TextbookGet(ctx context.Context, room, name string) (shared.LegacyMessage, error) {
	var out shared.LegacyMessage
	q := textbookQuery(room, name)
	err := c.do(ctx, http.MethodGet, "/get_msg/?"+q.Encode(), "", nil, &out)
	return out, err
}

// TextbookSend posts a message as name to room (lobby when ""): POST
// /send_msg/, which answers "OK".
func (c *Client) TextbookSend(ctx context.Context, room, name, text string) error {
	return c.do(ctx, http.MethodPost, "/send_msg/", "", struct {
		Content string `json:"content"`
		Name    string `json:"name"`
		Room    string `json:"room,omitempty"`
	}{text, name, room}, nil)
}

// textbookQuery is the query of a textbook GET: the name, the room when
// not lobby, and a nonce so that no cache answers two calls with one reply.
func textbookQuery(room, name string) url.Values {
	q := url.Values{"name": {name}, "n": {Nonce()}}
	if room != "" {
		q.Set("room", room)
	}
	return q
}

// Members lists who is present: GET /api/rooms/{room}/members.
func (c *Client) Members(ctx context.Context, room string) (shared.MembersResponse, error) {
	var out shared.MembersResponse
	err := c.do(ctx, http.MethodGet, "/api/rooms/"+url.PathEscape(room)+"/members?n="+Nonce(), "", nil, &out)
	return out, err
}

// request is one call as the transports make it.
type request struct {
	method, path, token string
	body                []byte
	// noRedirect answers a redirect as it is instead of following it.
	noRedirect bool
}

func (c *Client) do(ctx context.Context, method, path, token string, in, out any) error {
	req := request{method: method, path: path, token: token}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		req.body = b
	}
	return c.send(ctx, req, out)
}

func (c *Client) send(ctx context.Context, req request, out any) error {
	method, path := req.method, req.path
	resp, err := c.roundTrip(ctx, strings.TrimRight(c.Base, "/")+path, req)
	if c.OnBody != nil && err == nil {
		c.OnBody(len(resp.body))
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &NetError{Err: err}
	}
	if resp.status >= 400 {
		return decodeError(resp)
	}
	if out == nil {
		return nil
	}
	// JSON null decodes into anything without an error: it is no answer
	// either.
	if body := bytes.TrimSpace(resp.body); len(body) == 0 || bytes.Equal(body, []byte("null")) {
		return &BadAnswerError{Status: resp.status, Err: fmt.Errorf("%s %s: empty body", method, path)}
	}
	if err := json.Unmarshal(resp.body, out); err != nil {
		return &BadAnswerError{Status: resp.status, Err: fmt.Errorf("decoding %s %s answer: %w", method, path, err)}
	}
	return nil
}

// rawResponse is what do needs of an answer. roundTrip reads the whole
// body (at most maxBody bytes) while the context still applies.
type rawResponse struct {
	status     int
	retryAfter string
	body       []byte
}

const maxBody = 8 << 20

// decodeError turns an error answer into a *StatusError. A body that is not
// the API's envelope (a proxy's 502 page, say) still gets a code from its
// status so callers can switch on it.
func decodeError(resp rawResponse) error {
	st := &StatusError{Status: resp.status, RetryAfter: parseRetryAfter(resp.retryAfter)}
	var env shared.ErrorResponse
	if json.Unmarshal(resp.body, &env) == nil && env.Error != nil && env.Error.Code != "" {
		st.Err = env.Error
		return st
	}
	code := shared.CodeInternal
	switch {
	case resp.status == http.StatusNotFound:
		code = shared.CodeNotFound
	case resp.status == http.StatusTooManyRequests:
		code = shared.CodeRateLimited
	case resp.status == http.StatusUnauthorized:
		code = shared.CodeUnauthorized
	case resp.status >= 500:
		code = shared.CodeUnavailable
	case resp.status >= 400:
		code = shared.CodeBadRequest
	}
	st.Err = &shared.Error{Code: code, Message: strings.TrimSpace(http.StatusText(resp.status))}
	return st
}

func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// Nonce returns 64 random bits in hex, for unique poll URLs and message ids.
func Nonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// NewClientMsgID returns a fresh client_msg_id: 128 random bits, well within
// shared.MaxClientMsgIDLen and printable ASCII as the server requires.
func NewClientMsgID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
