package httpapi_test

import (
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parley-chat/parley/shared"
)

// While Config.Ready fails (a shared store's subscription is down), sends
// and polls answer 503 unavailable with Retry-After and store nothing; the
// health check says why; and all is served again once it passes.
func TestNotReadyAnswersUnavailable(t *testing.T) {
	var down atomic.Bool
	h := newHarness(t, func(s *settings) {
		s.api.Ready = func() error {
			if down.Load() {
				return errors.New("redis subscription lost")
			}
			return nil
		}
	})
	tok := h.join("ann")
	h.send(tok, "lobby", "before", "")

	down.Store(true)
	for _, r := range []reply{
		h.do("POST", "/api/rooms/lobby/messages", tok, jsonType, `{"text":"during"}`),
		h.do("GET", "/api/rooms/lobby/messages?after=0&wait=1", tok, "", ""),
		h.do("POST", "/send_msg/", "", formType, "content=during&name=bob"),
		h.do("GET", "/get_msg/?name=bob", "", "", ""),
	} {
		require.Equal(t, http.StatusServiceUnavailable, r.status, "%s", r.body)
		require.Equal(t, shared.CodeUnavailable, r.errCode(t))
		require.Equal(t, "1", r.header.Get("Retry-After"))
	}
	health := h.do("GET", "/healthz", "", "", "")
	require.Equal(t, http.StatusServiceUnavailable, health.status)
	require.Contains(t, string(health.body), "redis subscription lost")

	down.Store(false)
	require.Equal(t, http.StatusOK, h.do("GET", "/healthz", "", "", "").status)
	h.send(tok, "lobby", "after", "")
	p := h.poll(tok, "lobby", "limit=10")
	var texts []string
	for _, m := range p.Messages {
		if m.Kind == shared.KindText {
			texts = append(texts, m.Text)
		}
	}
	require.Equal(t, "before after", strings.Join(texts, " "), "nothing sent while unavailable was stored")
}
