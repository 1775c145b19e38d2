// Command parley serves the Parley group chat: the long-poll API, the
// textbook endpoints and the go-app UI, on one address.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/parley-chat/parley/app/ui"
	"github.com/parley-chat/parley/server/connlimit"
	"github.com/parley-chat/parley/server/httpapi"
	"github.com/parley-chat/parley/server/park"
	"github.com/parley-chat/parley/server/queue"
	"github.com/parley-chat/parley/server/redisstore"
	"github.com/parley-chat/parley/server/session"
	"github.com/parley-chat/parley/shared"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "parley:", err)
		os.Exit(1)
	}
}

// config is everything run reads from flags and PARLEY_* variables.
type config struct {
	addr            string
	store           string
	data            string
	redis           string
	redisPrefix     string
	web             string
	history         int
	sessionTTL      time.Duration
	maxPolls        int
	maxPollsPerAddr int
	maxConnsPerAddr int
	maxRooms        int
	readTimeout     time.Duration
	roomIdle        time.Duration
	windowMB        int
	roomRate        float64
	roomsPerSession int
	sendRate        float64
	sessionRate     float64
	logLevel        string
	tlsCert         string
	tlsKey          string
	origins         string
	proxies         string
	textbookRate    float64
	pprofAddr       string
	metricsAddr     string
	retainMessages  int
	retainAge       time.Duration
}

// parseConfig reads flags, each defaulting to its PARLEY_* variable (e.g.
// -session-ttl from PARLEY_SESSION_TTL) and then to the built-in default.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("parley", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "address to listen on")
	fs.StringVar(&c.store, "store", "bolt", "message store: bolt (durable, embedded), redis (shared by several instances) or memory")
	fs.StringVar(&c.data, "data", "./data/parley.db", "bolt database file")
	fs.StringVar(&c.redis, "redis", "redis://127.0.0.1:6379/0", "Redis URL for -store redis (redis:// or rediss://)")
	fs.StringVar(&c.redisPrefix, "redis-prefix", redisstore.DefaultPrefix, "prefix of every Redis key and channel, so deployments can share a Redis")
	fs.IntVar(&c.retainMessages, "retain-messages", 100_000, "messages each room keeps in the store, older ones dropped; 0: no bound (bolt, redis; memory keeps 100,000)")
	fs.DurationVar(&c.retainAge, "retain-age", 30*24*time.Hour, "bolt drops messages older than this; 0 keeps them")
	fs.StringVar(&c.web, "web", "./web", "directory with app.wasm and the static assets")
	fs.IntVar(&c.history, "history", 1000, "messages per room kept in memory to answer polls")
	fs.DurationVar(&c.sessionTTL, "session-ttl", 2*time.Minute, "how long a silent session lives")
	fs.IntVar(&c.maxPolls, "max-polls", 10000, "polls held at once before answering 503 (three quarters of them at most without a session)")
	fs.IntVar(&c.maxPollsPerAddr, "max-polls-per-addr", 1000, "polls held at once from one client address (IPv4, or IPv6 /64) before answering 429; -1: no bound (load tests on loopback)")
	fs.IntVar(&c.maxConnsPerAddr, "max-conns-per-addr", 1100, "connections open at once from one client address (IPv4, or IPv6 /64; -trusted-proxies exempt); beyond, closed at accept. Above -max-polls-per-addr, so a busy address gets 429s, not dropped connections; -1: no bound")
	fs.IntVar(&c.maxRooms, "max-rooms", 10000, "rooms held in memory; beyond it the coldest unused room leaves, and new rooms are refused only when every room is in use")
	fs.DurationVar(&c.roomIdle, "room-idle", 2*time.Minute, "how long a room nobody reads or writes stays in memory")
	fs.IntVar(&c.windowMB, "window-mb", 256, "MiB of messages all rooms together keep in memory to answer polls (-history per room at most); beyond it the coldest rooms' polls read the store")
	fs.Float64Var(&c.roomRate, "room-rate", 0.2, "new rooms per second one client address may create by sending (burst 10)")
	fs.IntVar(&c.roomsPerSession, "rooms-per-session", 16, "rooms one session may be present in at once")
	fs.DurationVar(&c.readTimeout, "read-timeout", 30*time.Second, "time to read a whole request; a body slower than this is answered 400 bad_request")
	fs.Float64Var(&c.sendRate, "send-rate", 5, "messages per second one session may send (burst 20)")
	fs.Float64Var(&c.sessionRate, "session-rate", 1, "sessions per second one client address may create (burst 20)")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "TLS certificate file (PEM); with -tls-key, serve HTTPS and HTTP/2")
	fs.StringVar(&c.tlsKey, "tls-key", "", "TLS private key file (PEM)")
	fs.Float64Var(&c.textbookRate, "textbook-rate", 1, "posts per second one client address may make to the textbook's /send_msg/ (burst 10); 0: no limit")
	fs.StringVar(&c.proxies, "trusted-proxies", "", "comma-separated addresses or CIDRs of reverse proxies whose X-Forwarded-For names the client (for per-address limits); empty: the peer is the client")
	fs.StringVar(&c.origins, "trusted-origins", "", "comma-separated origins (https://host[:port]) besides the server's own whose pages may post; others are refused with cross_site")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "serve GET /metrics on this address instead of the main one")
	fs.StringVar(&c.pprofAddr, "pprof-addr", "", "serve net/http/pprof on this address (keep it on loopback); empty: off")
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		key := "PARLEY_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(key); v != "" {
			if err := f.Value.Set(v); err != nil && envErr == nil {
				envErr = fmt.Errorf("%s=%q: %w", key, v, err)
			}
			f.DefValue = v
		}
	})
	if envErr != nil {
		return c, envErr
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case c.store != "bolt" && c.store != "memory" && c.store != "redis":
		return c, fmt.Errorf("-store must be bolt, redis or memory, not %q", c.store)
	case c.retainMessages < 0 || c.retainAge < 0:
		return c, errors.New("-retain-messages and -retain-age must not be negative")
	case c.history < 1:
		return c, errors.New("-history must be at least 1")
	case c.sessionTTL < time.Second:
		return c, errors.New("-session-ttl must be at least 1s")
	case c.maxPolls < 1:
		return c, errors.New("-max-polls must be at least 1")
	case c.maxPollsPerAddr == 0 || c.maxPollsPerAddr < -1:
		return c, errors.New("-max-polls-per-addr must be at least 1, or -1 for no bound")
	case c.maxConnsPerAddr == 0 || c.maxConnsPerAddr < -1:
		return c, errors.New("-max-conns-per-addr must be at least 1, or -1 for no bound")
	case c.maxRooms < 1:
		return c, errors.New("-max-rooms must be at least 1")
	case c.readTimeout < 100*time.Millisecond:
		return c, errors.New("-read-timeout must be at least 100ms")
	case c.sendRate <= 0 || c.sessionRate <= 0 || c.roomRate <= 0:
		return c, errors.New("-send-rate, -session-rate and -room-rate must be positive")
	case c.roomIdle < time.Second || c.windowMB < 1 || c.roomsPerSession < 1:
		return c, errors.New("-room-idle must be at least 1s, -window-mb and -rooms-per-session at least 1")
	case c.textbookRate < 0:
		return c, errors.New("-textbook-rate must not be negative")
	case (c.tlsCert == "") != (c.tlsKey == ""):
		return c, errors.New("-tls-cert and -tls-key go together")
	}
	if _, err := parsePrefixes(c.proxies); err != nil {
		return c, fmt.Errorf("-trusted-proxies: %w", err)
	}
	return c, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	c, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	be, err := openBackend(ctx, c, log)
	if err != nil {
		return err
	}
	store := be.store
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("close store", "err", err)
		}
	}()
	if be.upkeep != nil {
		upCtx, stopUpkeep := context.WithCancel(context.Background())
		upDone := make(chan struct{})
		go func() {
			defer close(upDone)
			be.upkeep(upCtx)
		}()
		defer func() { // before the store closes
			stopUpkeep()
			<-upDone
		}()
	}

	metrics := httpapi.NewMetrics()
	hub := queue.New(metrics.Store(store), queue.Options{History: c.history, MaxRooms: c.maxRooms, IdleTimeout: c.roomIdle, WindowBytes: int64(c.windowMB) << 20, SyncInterval: be.syncInterval, Logger: log})
	defer hub.Close()
	var ready func() error
	if be.follow != nil {
		var stopFollow func()
		ready, stopFollow = be.follow(hub)
		defer stopFollow() // before hub.Close, which the deferred calls run after
	}
	sessions := session.NewManager(session.Options{TTL: c.sessionTTL, SendRate: rate.Limit(c.sendRate), SendBurst: sendBurst, MaxHeld: c.maxPolls, MaxHeldPerAddr: c.maxPollsPerAddr, MaxRoomsPerSession: c.roomsPerSession, Store: be.sessions, Logger: log})
	lot, err := park.New(park.Options{Logger: log})
	if err != nil {
		return err
	}
	defer func() {
		if err := lot.Close(); err != nil {
			log.Warn("close park", "err", err)
		}
	}()
	uiHandler, err := ui.Handler(ui.Options{WebDir: c.web, Logger: log})
	if err != nil {
		return fmt.Errorf("ui: %w", err)
	}
	textbookRate := rate.Limit(c.textbookRate)
	if textbookRate == 0 {
		textbookRate = rate.Inf
	}
	proxies, _ := parsePrefixes(c.proxies) // checked by parseConfig
	api, err := httpapi.New(httpapi.Config{
		Hub: hub, Sessions: sessions, UI: uiHandler, Logger: log, Lot: lot,
		SessionRate: rate.Limit(c.sessionRate), SessionBurst: sessionBurst, Ready: ready, LegacyCursors: be.cursors,
		SendLimiter: be.sendLimit, SessionLimiter: be.sessionLimit, RoomRate: rate.Limit(c.roomRate), RoomBurst: roomBurst, RoomLimiter: be.roomLimit, TrustedOrigins: splitList(c.origins),
		LegacySendRate: textbookRate, TrustedProxies: proxies,
		Metrics: metrics, MetricsElsewhere: c.metricsAddr != "",
	})
	if err != nil {
		return err
	}

	raw, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// The cap counts TCP connections beneath TLS and the park, so a
	// connection counts until its socket really closes.
	capped := connlimit.New(raw, connlimit.Options{Max: c.maxConnsPerAddr, Exempt: func(a netip.Addr) bool { return inPrefixes(proxies, a) }})
	if err := metrics.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "parley_connections_refused_total", Help: "Connections closed at accept for being over -max-conns-per-addr.",
	}, func() float64 { return float64(capped.Refused()) }), prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "parley_connections_open", Help: "Client connections open now, those of -trusted-proxies not counted.",
	}, func() float64 { return float64(capped.Open()) })); err != nil {
		_ = raw.Close()
		return err
	}
	inner := net.Listener(capped)
	if c.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
		if err != nil {
			_ = raw.Close()
			return fmt.Errorf("tls: %w", err)
		}
		// HTTP/2 comes with TLS: one connection carries every tab's
		// polls, instead of HTTP/1.1's six per host. TLS sits beneath the
		// park's listener, so connections given back after an answer are
		// already TLS and are not wrapped twice.
		inner = tls.NewListener(capped, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12})
	}
	ln := lot.Listener(inner)
	handler := api.Handler()
	// Re-polls on kept-alive connections are read and served by the park's
	// lane, without net/http's per-connection work; the rest of /api/ too.
	lot.Handle("/api/", handler)
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
		ReadTimeout:       c.readTimeout,
		// Longer than the longest poll (MaxWaitSeconds), so a held poll is
		// never cut off before it answers.
		WriteTimeout: shared.MaxWaitSeconds*time.Second + 15*time.Second,
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	if c.metricsAddr != "" {
		stopMetrics, err := serveMetrics(c.metricsAddr, api.MetricsHandler(), log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	if c.pprofAddr != "" {
		stopPprof, err := servePprof(c.pprofAddr, log)
		if err != nil {
			return err
		}
		defer stopPprof()
	}

	if getenv("GOGC") == "" {
		// A long-poll server's live heap is small (a few KB per waiter)
		// while each wave of polls allocates many times that, so with the
		// default GOGC=100 it collects several times a second. Measured
		// with make bench-peers at 1,000 waiters, alternating, three rounds
		// each: 28 µs of CPU per delivery at 100, 24 µs at 400. Memory a
		// burst leaves behind is returned by returnIdleMemory. GOGC and
		// GOMEMLIMIT in the environment override this.
		debug.SetGCPercent(400)
	}
	memCtx, stopMem := context.WithCancel(context.Background())
	memDone := make(chan struct{})
	go func() {
		defer close(memDone)
		returnIdleMemory(memCtx, 250*time.Millisecond, 512<<10, 4<<20, log)
	}()
	defer func() {
		stopMem()
		<-memDone
	}()

	presenceCtx, stopPresence := context.WithCancel(context.Background())
	presenceDone := make(chan struct{})
	go func() {
		defer close(presenceDone)
		sessions.Run(presenceCtx, time.Second, api.EmitPresence)
	}()
	defer func() {
		stopPresence()
		<-presenceDone
	}()

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("parley listening", "addr", ln.Addr().String(), "tls", c.tlsCert != "", "store", c.store, "data", c.data)

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	// Answer every held poll now so clients re-poll elsewhere, then let
	// in-flight sends finish before the writer and the store stop. Parked
	// polls are answered with Connection: close, so the server does not
	// wait for those clients' next request.
	lot.Shutdown()
	hub.Drain()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("shutdown", "err", err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
}

// maxHeaderBytes bounds a request's head. net/http's default is 1 MB, and
// issue 8 saw 40 polls with 900 KB headers add 72 MB of RSS; Parley's
// requests need a few hundred bytes (a token, a cookie, a query), so 32 KB
// leaves room for any proxy's additions.
const maxHeaderBytes = 32 << 10

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func inPrefixes(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parsePrefixes parses a comma-separated list of CIDRs and addresses (an
// address is its own /32 or /128).
func parsePrefixes(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range splitList(v) {
		if p, err := netip.ParsePrefix(item); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(item)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an address nor a CIDR", item)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}
