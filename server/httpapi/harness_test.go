package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/time/rate"

	"github.com/parley-chat/parley/server/httpapi"
	"github.com/parley-chat/parley/server/internal/testclock"
	"github.com/parley-chat/parley/server/memstore"
	"github.com/parley-chat/parley/server/park"
	"github.com/parley-chat/parley/server/queue"
	"github.com/parley-chat/parley/server/session"
	"github.com/parley-chat/parley/shared"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type harness struct {
	t        testing.TB
	url      string
	hub      *queue.Hub
	sessions *session.Manager
	api      *httpapi.Server
	clock    *testclock.Clock
	client   *http.Client
}

// settings is what a harness is built from; options change it.
type settings struct {
	api     httpapi.Config
	session session.Options
	queue   queue.Options
	store   queue.Store
	// noPark holds polls on their handlers' goroutines, as on HTTP/2.
	noPark bool
	// ui serves what is not the API; nil: a stub answering "ui".
	ui http.Handler
	// tls serves HTTPS.
	tls bool
	// logs, when set, also receives every log line, at debug level.
	logs io.Writer
	// readTimeout is the server's ReadTimeout (0: none).
	readTimeout time.Duration
}

type option func(*settings)

// newHarness serves the API on a real loopback port and stops it at the end
// of the test. Presence events are handed to the log by flushPresence, in
// the place of session.Manager.Run, so that tests control when.
func newHarness(t testing.TB, opts ...option) *harness {
	t.Helper()
	c := testclock.New(time.Now())
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	st := settings{
		api:     httpapi.Config{SessionRate: rate.Inf, SessionBurst: 1000, LegacySendRate: rate.Inf, LegacySendBurst: 1000, Logger: log},
		session: session.Options{Now: c.Now, SendRate: rate.Inf, SendBurst: 1000, Logger: log},
		queue:   queue.Options{History: 100, Logger: log},
		store:   memstore.New(0),
	}
	for _, o := range opts {
		o(&st)
	}
	if st.logs != nil {
		log = slog.New(slog.NewTextHandler(io.MultiWriter(t.Output(), st.logs), &slog.HandlerOptions{Level: slog.LevelDebug}))
		st.api.Logger, st.session.Logger, st.queue.Logger = log, log, log
	}
	metrics := httpapi.NewMetrics()
	hub := queue.New(metrics.Store(st.store), st.queue)
	sessions := session.NewManager(st.session)
	// Held polls are parked, as in production.
	lot, err := park.New(park.Options{Logger: log})
	require.NoError(t, err)
	cfg := st.api
	cfg.Hub, cfg.Sessions, cfg.Metrics = hub, sessions, metrics
	if !st.noPark {
		cfg.Lot = lot
	}
	cfg.UI = st.ui
	if cfg.UI == nil {
		cfg.UI = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ui") })
	}
	api, err := httpapi.New(cfg)
	require.NoError(t, err)
	handler := api.Handler()
	if !st.noPark {
		lot.Handle("/api/", handler)
	}
	srv := httptest.NewUnstartedServer(handler)
	srv.Config.ReadTimeout = st.readTimeout
	srv.Listener = lot.Listener(srv.Listener)
	if st.tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(func() {
		hub.Drain()
		srv.Close()
		require.NoError(t, lot.Close())
		hub.Close()
	})
	// A browser keeps cookies: the textbook's cursors live in one.
	client := srv.Client()
	client.Jar, err = cookiejar.New(nil)
	require.NoError(t, err)
	return &harness{t: t, url: srv.URL, hub: hub, sessions: sessions, api: api, clock: c, client: client}
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) errCode(t *testing.T) string {
	t.Helper()
	var e shared.ErrorResponse
	require.NoError(t, json.Unmarshal(r.body, &e), "error body is JSON: %s", r.body)
	require.NotNil(t, e.Error, "body: %s", r.body)
	require.NotEmpty(t, e.Error.Message)
	return e.Error.Code
}

func (h *harness) do(method, path, token, contentType, body string) reply {
	h.t.Helper()
	return h.doCtx(context.Background(), method, path, token, contentType, body)
}

func (h *harness) doCtx(ctx context.Context, method, path, token, contentType, body string) reply {
	h.t.Helper()
	return h.doHeader(ctx, nil, method, path, token, contentType, body)
}

// doHeader is do with further request headers.
func (h *harness) doHeader(ctx context.Context, header http.Header, method, path, token, contentType, body string) reply {
	h.t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, h.url+path, strings.NewReader(body))
	require.NoError(h.t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return reply{status: -1, body: []byte(err.Error())}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(h.t, err)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

const (
	formType = "application/x-www-form-urlencoded"
	jsonType = "application/json"
)

func (h *harness) join(name string) string {
	h.t.Helper()
	r := h.do("POST", "/api/session", "", formType, url.Values{"name": {name}}.Encode())
	require.Equal(h.t, http.StatusCreated, r.status, "%s", r.body)
	var s shared.SessionResponse
	require.NoError(h.t, json.Unmarshal(r.body, &s))
	return s.Token
}

func (h *harness) send(token, room, text, id string) shared.Message {
	h.t.Helper()
	body, _ := json.Marshal(shared.SendRequest{Text: text, ClientMsgID: id})
	r := h.do("POST", "/api/rooms/"+room+"/messages", token, jsonType, string(body))
	require.Equal(h.t, http.StatusCreated, r.status, "%s", r.body)
	var m shared.Message
	require.NoError(h.t, json.Unmarshal(r.body, &m))
	return m
}

func (h *harness) poll(token, room, query string) shared.PollResponse {
	h.t.Helper()
	r := h.do("GET", "/api/rooms/"+room+"/messages?"+query, token, "", "")
	require.Equal(h.t, http.StatusOK, r.status, "%s", r.body)
	require.Equal(h.t, "no-store", r.header.Get("Cache-Control"))
	var p shared.PollResponse
	require.NoError(h.t, json.Unmarshal(r.body, &p))
	return p
}

// flushPresence hands pending join/leave events to the log now, instead of
// waiting for the presence goroutine, so tests need not sleep.
func (h *harness) flushPresence() {
	h.sessions.Flush(context.Background(), h.api.EmitPresence)
}

func kinds(msgs []shared.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, string(m.Kind)+":"+m.Author+":"+m.Text)
	}
	return out
}
