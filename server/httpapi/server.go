// Package httpapi is Parley's HTTP interface: the JSON API under /api/, the
// textbook's /send_msg/, /get_msg/ and /home/ endpoints, and the UI handler
// at /. It holds no chat state of its own beyond the textbook's per-name
// cursors; the queue and session packages own the rest.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"regexp"
	"time"

	"github.com/gorilla/schema"
	"golang.org/x/time/rate"

	"github.com/parley-chat/parley/server/park"
	"github.com/parley-chat/parley/server/queue"
	"github.com/parley-chat/parley/server/session"
	"github.com/parley-chat/parley/shared"
)

// Config holds a Server's dependencies and limits.
type Config struct {
	Hub      *queue.Hub
	Sessions *session.Manager
	// UI serves everything outside the API (the app shell); nil answers 404.
	UI     http.Handler
	Logger *slog.Logger
	// Lot parks the connections of held HTTP/1.1 polls; nil holds every
	// poll on its handler's goroutine. Serve on Lot.Listener to use it.
	Lot *park.Lot
	// SessionRate and SessionBurst bound session creation per client IP
	// (default 1/s, burst 20), in this process, unless SessionLimiter is
	// set (a limiter shared by instances).
	SessionRate    rate.Limit
	SessionBurst   int
	SessionLimiter Limiter
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client: requests from them are limited per forwarded address
	// rather than all together as the proxy's. Empty: the peer address is
	// the client's, and X-Forwarded-For is ignored (anyone can send it).
	TrustedProxies []netip.Prefix
	// TrustedOrigins are origins besides the server's own ("https://host[:port]")
	// whose pages may make state-changing requests.
	TrustedOrigins []string
	// SendLimiter, when set, bounds each session's sends (keyed by its
	// name) instead of the Manager's per-session limiter: a limiter shared
	// by instances.
	SendLimiter Limiter
	// RoomRate and RoomBurst bound how many new rooms (rooms whose first
	// message a request would write) one client address may create
	// (default one every 5 s, burst 10), in this process, unless
	// RoomLimiter is set (a limiter shared by instances).
	RoomRate    rate.Limit
	RoomBurst   int
	RoomLimiter Limiter
	// LegacyCursors keeps the textbook endpoints' cursors, one per browser
	// and name (default: in memory, up to LegacyNames).
	LegacyCursors session.CursorStore
	// LegacyNames bounds the in-memory textbook cursors (default 10000).
	LegacyNames int
	// LegacySendRate and LegacySendBurst bound POST /send_msg/ per client
	// address (default 1/s, burst 10): it needs no session, so no session's
	// send limit applies.
	LegacySendRate  rate.Limit
	LegacySendBurst int
	// Metrics collects what /metrics serves; nil makes one. Wrap the hub's
	// store with Metrics.Store to measure commits.
	Metrics *Metrics
	// MetricsElsewhere leaves GET /metrics off Handler, for a server that
	// serves MetricsHandler on its own address.
	MetricsElsewhere bool
	// Ready, when set, is asked before every send and poll: an error
	// answers 503 unavailable with Retry-After, and /healthz answers 503
	// too. With a shared store it reports the pub/sub subscription: while
	// it is down, other instances' messages would reach this one's polls
	// only by the periodic check, and sends might be the only thing working.
	Ready func() error
}

// Server is the HTTP side of Parley.
type Server struct {
	hub      *queue.Hub
	sessions *session.Manager
	ui       http.Handler
	log      *slog.Logger
	dec      *schema.Decoder

	lot             *park.Lot
	ready           func() error
	sessionLimit    Limiter
	sendLimit       Limiter
	roomLimit       Limiter
	legacySendLimit Limiter
	trustedProxies  []netip.Prefix
	legacy          session.CursorStore
	crossSite       *http.CrossOriginProtection
	metrics         *Metrics
	metricsRoute    bool
}

// New returns a Server; Hub and Sessions are required.
func New(cfg Config) (*Server, error) {
	if cfg.Hub == nil || cfg.Sessions == nil {
		return nil, errors.New("httpapi: Hub and Sessions are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SessionRate <= 0 {
		cfg.SessionRate = 1
	}
	if cfg.SessionBurst <= 0 {
		cfg.SessionBurst = 20
	}
	if cfg.SessionLimiter == nil {
		cfg.SessionLimiter = newKeyedLimiter(cfg.SessionRate, cfg.SessionBurst, 10000)
	}
	if cfg.RoomRate <= 0 {
		cfg.RoomRate = rate.Every(5 * time.Second)
	}
	if cfg.RoomBurst <= 0 {
		cfg.RoomBurst = 10
	}
	if cfg.RoomLimiter == nil {
		cfg.RoomLimiter = newKeyedLimiter(cfg.RoomRate, cfg.RoomBurst, 10000)
	}
	if cfg.LegacyNames <= 0 {
		cfg.LegacyNames = 10000
	}
	if cfg.LegacyCursors == nil {
		cfg.LegacyCursors = session.NewMemCursors(cfg.LegacyNames)
	}
	if cfg.LegacySendRate <= 0 {
		cfg.LegacySendRate = 1
	}
	if cfg.LegacySendBurst <= 0 {
		cfg.LegacySendBurst = 10
	}
	s := &Server{
		hub:             cfg.Hub,
		sessions:        cfg.Sessions,
		ui:              cfg.UI,
		log:             cfg.Logger,
		dec:             newDecoder(),
		lot:             cfg.Lot,
		ready:           cfg.Ready,
		sessionLimit:    cfg.SessionLimiter,
		sendLimit:       cfg.SendLimiter,
		roomLimit:       cfg.RoomLimiter,
		legacySendLimit: newKeyedLimiter(cfg.LegacySendRate, cfg.LegacySendBurst, 10000),
		trustedProxies:  cfg.TrustedProxies,
		legacy:          cfg.LegacyCursors,
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	s.metrics, s.metricsRoute = cfg.Metrics, !cfg.MetricsElsewhere
	if err := s.registerMetrics(); err != nil {
		return nil, err
	}
	var err error
	if s.crossSite, err = newCrossSite(cfg.TrustedOrigins, http.HandlerFunc(s.denyCrossSite)); err != nil {
		return nil, err
	}
	return s, nil
}

// Handler returns every route of Parley on a private mux.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.handleHealth)
	if s.metricsRoute {
		mux.Handle("GET /metrics", s.MetricsHandler())
	}

	mux.HandleFunc("POST /api/session", s.handleCreateSession)
	mux.HandleFunc("DELETE /api/session", s.handleEndSession)
	mux.Handle("GET /api/rooms/{room}/messages", s.needStore(s.handlePoll))
	mux.Handle("POST /api/rooms/{room}/messages", s.needStore(s.handleSend))
	mux.HandleFunc("GET /api/rooms/{room}/members", s.handleMembers)
	mux.HandleFunc("/api/", s.handleAPINotFound)

	mux.Handle("POST /send_msg/{$}", s.needStore(s.handleLegacySend))
	mux.Handle("GET /get_msg/{$}", s.needStore(s.handleLegacyGet))
	mux.Handle("GET /home/{$}", s.needStore(s.handleLegacyHome))
	mux.Handle("/send_msg/{$}", s.methodNotAllowed("POST"))
	mux.Handle("/get_msg/{$}", s.methodNotAllowed("GET, HEAD"))
	mux.Handle("/home/{$}", s.methodNotAllowed("GET, HEAD"))

	if s.ui != nil {
		mux.Handle("/", s.ui)
	}
	return securityHeaders(s.recover(s.crossSite.Handler(mux)))
}

// recover turns a panic in one handler into a 500 for that request alone, so
// one bad request never takes the server down for everyone else.
func (s *Server) recover(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic in handler", "method", r.Method, "path", r.URL.Path, "panic", v)
				s.writeError(w, r, shared.Errorf(shared.CodeInternal, "internal error"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// handleHealth serves GET /healthz: 200 "ok", or 503 with the reason
// while Config.Ready fails, so a load balancer can take the instance out.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if s.ready != nil {
		if err := s.ready(); err != nil {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("unavailable: " + err.Error() + "\n"))
			return
		}
	}
	_, _ = w.Write([]byte("ok\n"))
}

// needStore answers 503 unavailable, with Retry-After, instead of calling
// next while Config.Ready fails.
func (s *Server) needStore(next http.HandlerFunc) http.Handler {
	if s.ready == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.ready(); err != nil {
			s.writeError(w, r, withRetry(shared.Errorf(shared.CodeUnavailable, "the message store is unreachable; retry shortly"), time.Second))
			return
		}
		next(w, r)
	})
}

// apiMethods lists the methods of each API path, for 405 answers: the
// catch-all below takes them from the mux, which would answer in plain text.
var apiMethods = []struct {
	path    *regexp.Regexp
	methods string
}{
	{regexp.MustCompile(`^/api/session$`), "POST, DELETE"},
	{regexp.MustCompile(`^/api/rooms/[^/]+/messages$`), "GET, HEAD, POST"},
	{regexp.MustCompile(`^/api/rooms/[^/]+/members$`), "GET, HEAD"},
}

// methodNotAllowed answers a known path asked with the wrong method, in JSON.
func (s *Server) methodNotAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		s.writeError(w, r, shared.Errorf(shared.CodeMethodNotAllowed, "%s is not allowed on %s; use %s", r.Method, r.URL.Path, allow))
	})
}

// handleAPINotFound answers API paths and methods that do not exist in JSON,
// like every other API error.
func (s *Server) handleAPINotFound(w http.ResponseWriter, r *http.Request) {
	for _, m := range apiMethods {
		if m.path.MatchString(r.URL.Path) {
			s.methodNotAllowed(m.methods).ServeHTTP(w, r)
			return
		}
	}
	s.writeError(w, r, shared.Errorf(shared.CodeNotFound, "no such API endpoint: %s %s", r.Method, r.URL.Path))
}

// HeldPolls returns the number of polls held now.
func (s *Server) HeldPolls() int { return s.sessions.Held() }

// EmitPresence logs a presence event in its room; it is what
// session.Manager.Run calls.
func (s *Server) EmitPresence(ctx context.Context, e session.Event) error {
	_, _, err := s.hub.Append(ctx, shared.Message{Room: e.Room, Kind: e.Kind, Author: e.Name})
	return err
}
