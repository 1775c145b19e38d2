package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/parley-chat/parley/server/internal/testlog"
	"github.com/parley-chat/parley/shared"
)

// scrape reads GET /metrics into a map from series (name and labels) to
// value.
func (h *harness) scrape() map[string]float64 {
	h.t.Helper()
	r := h.do("GET", "/metrics", "", "", "")
	require.Equal(h.t, http.StatusOK, r.status)
	require.Contains(h.t, r.header.Get("Content-Type"), "text/plain")
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		require.NoError(h.t, err, line)
		out[line[:i]] = v
	}
	return out
}

// TestMetrics scrapes /metrics after known traffic: held and parked polls,
// sessions, rooms, appends, deliveries, poll latency, store commits and
// refusals by code.
func TestMetrics(t *testing.T) {
	h := newHarness(t, func(s *settings) { s.api.LegacySendRate, s.api.LegacySendBurst = rate.Every(time.Hour), 1 })
	alice := h.join("alice")
	h.join("bob")
	h.poll(alice, "lobby", "")
	h.flushPresence() // alice's join
	cur := h.poll("", "lobby", "")

	// One poll held (and parked) until a send wakes it.
	got := make(chan shared.PollResponse, 1)
	go func() { got <- h.poll("", "lobby", fmt.Sprintf("after=%d&epoch=%s&wait=30", cur.Next, cur.Epoch)) }()
	require.Eventually(t, func() bool { return h.api.HeldPolls() == 1 }, 10*time.Second, 5*time.Millisecond)
	m := h.scrape()
	require.Equal(t, 1.0, m["parley_held_polls"])
	require.Equal(t, 1.0, m["parley_parked_polls"])
	require.Equal(t, 2.0, m["parley_sessions"])
	require.Equal(t, 1.0, m["parley_rooms_in_memory"])

	h.send(alice, "lobby", "one", "c1")
	r := h.do("POST", "/api/rooms/lobby/messages", alice, jsonType, `{"text":"one","client_msg_id":"c1"}`)
	require.Equal(t, http.StatusOK, r.status, "a retry: stored once")
	<-got
	h.legacySend("textbook")
	r = h.do("POST", "/send_msg/", "", formType, "content=again") // over the textbook limit
	require.Equal(t, http.StatusTooManyRequests, r.status)
	r = h.doHeader(context.Background(), http.Header{"Origin": {"https://evil.example"}}, "POST", "/api/session", "", formType, "name=x")
	require.Equal(t, http.StatusForbidden, r.status)
	h.poll("", "other", "") // a room without messages: read, then gone

	m = h.scrape()
	require.Equal(t, 0.0, m["parley_held_polls"])
	require.Equal(t, 1.0, m["parley_rooms_in_memory"])
	require.GreaterOrEqual(t, m["parley_room_evictions_total"], 1.0)
	require.Greater(t, m["parley_window_bytes"], 0.0)
	require.Equal(t, 3.0, m["parley_messages_appended_total"], "join, one text (its retry not stored again), the textbook post")
	require.GreaterOrEqual(t, m["parley_deliveries_total"], 2.0, "the join to the second poll, the text to the held one")
	require.Equal(t, 4.0, m["parley_poll_answer_seconds_count"])
	require.GreaterOrEqual(t, m["parley_store_commit_seconds_count"], 3.0)
	require.Equal(t, m["parley_store_commit_seconds_count"], m["parley_store_batch_size_count"])
	require.GreaterOrEqual(t, m["parley_store_batch_size_sum"], 4.0, "every append went through a commit, the retry too")
	require.Equal(t, 1.0, m[`parley_http_errors_total{code="rate_limited"}`])
	require.Equal(t, 1.0, m[`parley_http_errors_total{code="cross_site"}`])
	require.Equal(t, 0.0, m[`parley_http_errors_total{code="internal"}`])
	require.Contains(t, m, "go_goroutines")
}

func TestMetricsElsewhere(t *testing.T) {
	h := newHarness(t, func(s *settings) { s.api.MetricsElsewhere = true })
	r := h.do("GET", "/metrics", "", "", "")
	require.Equal(t, "ui", string(r.body), "not served on the main handler")
}

// TestLogsHoldNoTokensOrTexts: the logs, at debug level, never carry a
// session token (real or forged) or a message's text, whatever happens to
// the request: success, refusal, store failure.
func TestLogsHoldNoTokensOrTexts(t *testing.T) {
	logs := &testlog.Buffer{}
	h := newHarness(t, func(s *settings) { s.logs = logs; s.store = brokenStore{s.store} })
	tok := h.join("alice")
	const secret = "the-secret-text-7f3a"
	for _, c := range []struct{ method, path, token, ctype, body string }{
		{"POST", "/api/rooms/lobby/messages", tok, jsonType, `{"text":"` + secret + `"}`},                 // store fails: 503
		{"POST", "/api/rooms/lobby/messages", "forged-token-9c1e", jsonType, `{"text":"` + secret + `"}`}, // 401
		{"POST", "/api/rooms/lobby/messages", tok, jsonType, `{"text":"` + secret + "\x00" + `"}`},        // 400
		{"POST", "/send_msg/", "", formType, "content=" + secret},
		{"GET", "/api/rooms/lobby/messages?wait=0", tok, "", ""},
		{"GET", "/api/rooms/lobby/messages?wait=0&epoch=" + secret, "forged-token-9c1e", "", ""},
		{"DELETE", "/api/session", tok, "", ""},
	} {
		h.do(c.method, c.path, c.token, c.ctype, c.body)
	}
	out := logs.String()
	require.Contains(t, out, "request refused", "the failures were logged")
	for _, s := range []string{tok, "forged-token-9c1e", secret} {
		require.NotContains(t, out, s)
	}
}
