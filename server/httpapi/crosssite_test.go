package httpapi_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parley-chat/parley/shared"
)

// TestCrossSiteStateChangesRefused: a page of another site cannot create
// sessions, send, end sessions or post to /send_msg/ (issue 8: a form post
// with Origin: https://evil.example answered 201 and OK), while same-origin
// browsers, clients that send neither header (curl) and reads keep working.
func TestCrossSiteStateChangesRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(s *settings) { s.api.TrustedOrigins = []string{"https://ui.example"} })
	tok := h.join("alice")
	changes := []struct{ method, path, token, ctype, body string }{
		{"POST", "/api/session", "", formType, "name=mallory"},
		{"POST", "/api/rooms/lobby/messages", tok, formType, "text=forged"},
		{"POST", "/send_msg/", "", formType, "content=forged&name=carol"},
		{"DELETE", "/api/session", tok, "", ""},
		{"PUT", "/api/session", tok, formType, "name=x"},
		{"PATCH", "/api/rooms/lobby/messages", tok, formType, "text=x"},
	}
	foreign := []http.Header{
		{"Origin": {"https://evil.example"}},
		{"Origin": {"null"}}, // sandboxed frames and file: pages
		{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"}},
		{"Sec-Fetch-Site": {"cross-site"}}, // even without Origin
		{"Sec-Fetch-Site": {"same-site"}, "Origin": {"https://other." + "127.0.0.1"}},
	}
	for _, c := range changes {
		for _, hd := range foreign {
			r := h.doHeader(context.Background(), hd, c.method, c.path, c.token, c.ctype, c.body)
			require.Equal(t, http.StatusForbidden, r.status, "%s %s %v: %s", c.method, c.path, hd, r.body)
			require.Equal(t, shared.CodeCrossSite, r.errCode(t))
		}
	}
	require.Empty(t, h.poll("", "lobby", "").Messages, "nothing forged was logged")

	// The same requests from the server's own pages, an allowed origin and
	// curl are served.
	own := http.Header{"Origin": {h.url}, "Sec-Fetch-Site": {"same-origin"}}
	r := h.doHeader(context.Background(), own, "POST", "/api/session", "", formType, "name=bob")
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	r = h.doHeader(context.Background(), http.Header{"Origin": {h.url}}, "POST", "/send_msg/", "", formType, "content=jquery")
	require.Equal(t, http.StatusOK, r.status, "the textbook page, same origin, from a browser without Sec-Fetch-Site: %s", r.body)
	r = h.doHeader(context.Background(), http.Header{"Origin": {"https://ui.example"}}, "POST", "/api/rooms/lobby/messages", tok, formType, "text=trusted")
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	r = h.doHeader(context.Background(), http.Header{"Sec-Fetch-Site": {"none"}}, "POST", "/api/rooms/lobby/messages", tok, formType, "text=typed")
	require.Equal(t, http.StatusCreated, r.status, "a request the user made directly: %s", r.body)
	h.send(tok, "lobby", "curl", "")

	// Reads are not state changes: a foreign page may poll (CORS still
	// keeps it from reading the answer).
	r = h.doHeader(context.Background(), foreign[0], "GET", "/api/rooms/lobby/messages?wait=0", "", "", "")
	require.Equal(t, http.StatusOK, r.status)
}
