package httpapi_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parley-chat/parley/shared"
)

// TestSlowBodyIsAnsweredAnError: issue 8 saw a send whose body came too
// slowly cut by the read timeout and answered 200 OK with an empty body,
// unstored; the client took the empty 2xx for success and dropped the
// message. The client is still there, so it gets an error to retry on.
func TestSlowBodyIsAnsweredAnError(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(s *settings) { s.readTimeout = 300 * time.Millisecond })
	tok := h.join("alice")
	for _, c := range []struct{ path, ctype, body string }{
		{"/api/rooms/lobby/messages", jsonType, `{"text":"slow"}`},
		{"/api/rooms/lobby/messages", formType, `text=slow`},
		{"/api/session", jsonType, `{"name":"slowpoke"}`},
		{"/send_msg/", formType, `content=slow`},
	} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
		require.NoError(t, err)
		// Promise the body, send half of it, then stall past the timeout.
		_, err = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s",
			c.path, tok, c.ctype, len(c.body), c.body[:len(c.body)/2])
		require.NoError(t, err)
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err, c.path)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		resp.Body.Close()
		conn.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s: an unstored message is never a success: %s", c.path, body)
		r := reply{status: resp.StatusCode, header: resp.Header, body: body}
		require.Equal(t, shared.CodeBadRequest, r.errCode(t), c.path)
		require.Contains(t, string(body), "did not arrive", c.path)
	}
	require.Empty(t, h.poll("", "lobby", "").Messages)
}
