// Package park holds idle HTTP/1.1 long polls without a goroutine, a buffer
// or a request each, and serves the polls that follow on the same
// connections without net/http's per-connection machinery.
//
// A held poll's connection is taken from net/http (Hijack) and parked here
// as a bare socket, watched by one epoll set for the client leaving. Its
// answer is written straight to the socket by whoever delivers it. The
// client's next request on that keep-alive connection is then read here (the
// "lane"): a plain GET under the lane's prefix is parsed into an
// *http.Request and given to the same http.Handler, with a ResponseWriter
// whose poll can park again at once. Anything else goes back to the
// http.Server through the Listener, bytes already read included.
//
// With net/http alone every held poll keeps a goroutine with a deep stack,
// two bufio buffers, the request and its context, and every re-poll builds
// a connection's worth of state again: tens of KB and tens of µs per
// waiting browser. Parked, it is the socket and a few words.
package park

import (
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a Lot. Zero values take the defaults.
type Options struct {
	// WriteTimeout bounds writing an answer that the socket did not take
	// at once (default 10s); then the connection is closed.
	WriteTimeout time.Duration
	// IdleTimeout closes a lane connection with no request for this long
	// (default 2 min), as http.Server's IdleTimeout does.
	IdleTimeout time.Duration
	// HeaderTimeout closes a lane connection whose request headers have not
	// all arrived this long after they began (default 5s).
	HeaderTimeout time.Duration
	// Defer, when set, returns a channel that lane workers wait on (when it
	// is not nil) before reading the next request: answers being written
	// go out before the re-polls they cause are read. queue.Hub.FanningOut
	// is such a function.
	Defer  func() <-chan struct{}
	Logger *slog.Logger
}

// Lot keeps parked and lane connections.
type Lot struct {
	opt  Options
	poll *poller // nil where there is no epoll: nothing is watched, no lane

	handler http.Handler // serves lane requests; nil: no lane
	prefix  string

	parked atomic.Int64
	served atomic.Int64 // requests served on the lane
	handed atomic.Int64 // connections handed back to net/http

	closing atomic.Bool // answers close their connections: the server is stopping

	mu     sync.RWMutex
	conns  map[uint64]*conn
	nextID uint64
	ln     *listener
	closed bool
}

// New returns a Lot; Close releases it.
func New(opt Options) (*Lot, error) {
	if opt.WriteTimeout <= 0 {
		opt.WriteTimeout = 10 * time.Second
	}
	if opt.IdleTimeout <= 0 {
		opt.IdleTimeout = 2 * time.Minute
	}
	if opt.HeaderTimeout <= 0 {
		opt.HeaderTimeout = 5 * time.Second
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	l := &Lot{opt: opt, conns: make(map[uint64]*conn)}
	p, err := newPoller(l)
	if err != nil {
		return nil, err
	}
	l.poll = p
	return l, nil
}

// Listener wraps inner: it accepts inner's connections and those handed
// back by the Lot. Serve the http.Server on it, and only one server.
func (l *Lot) Listener(inner net.Listener) net.Listener {
	ln := newListener(inner)
	l.mu.Lock()
	l.ln = ln
	l.mu.Unlock()
	return ln
}

// Handle serves the GET requests whose path starts with prefix on the lane,
// with h (the same handler the http.Server has). Call it before serving.
// Lane requests carry no body and context.Background as their context.
func (l *Lot) Handle(prefix string, h http.Handler) {
	if l.poll == nil {
		return
	}
	l.handler, l.prefix = h, prefix
}

// Len returns the number of parked polls.
func (l *Lot) Len() int { return int(l.parked.Load()) }

// Stats counts what the Lot did since it started.
type Stats struct {
	Parked int64 // polls parked now
	Served int64 // requests read and served on the lane
	Handed int64 // connections handed back to net/http
}

// Stats returns the Lot's counters.
func (l *Lot) Stats() Stats {
	return Stats{Parked: l.parked.Load(), Served: l.served.Load(), Handed: l.handed.Load()}
}

// Shutdown makes every answer from now on close its connection (with
// Connection: close), and closes the lane's idle connections: call it
// before answering the held polls of a server that is stopping, so that
// http.Server's Shutdown does not wait for clients with nothing to send.
func (l *Lot) Shutdown() {
	l.closing.Store(true)
	l.mu.RLock()
	conns := l.snapshot()
	l.mu.RUnlock()
	for _, c := range conns {
		c.closeIfIdle()
	}
}

// Close closes every connection the Lot holds (parked polls' Gone is not
// called) and stops its goroutines.
func (l *Lot) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.closing.Store(true)
	conns := l.snapshot()
	l.mu.Unlock()
	var err error
	if l.poll != nil {
		err = l.poll.close()
	}
	for _, c := range conns {
		c.close()
	}
	if l.ln != nil {
		l.ln.drain()
	}
	return err
}

func (l *Lot) snapshot() []*conn {
	out := make([]*conn, 0, len(l.conns))
	for _, c := range l.conns {
		out = append(out, c)
	}
	return out
}

func (l *Lot) isClosing() bool { return l.closing.Load() }

// Gone is told when a parked client closes its connection.
type Gone interface{ Gone() }

// Spot states.
const (
	waiting int32 = iota
	answered
)

// Spot is one parked poll, answered once with Reply.
type Spot struct {
	c     *conn
	head  []byte // status line and headers, less Content-Length and Date
	close bool   // close the connection after the answer
	gone  Gone
	state atomic.Int32
}

// Park holds the poll of r, an HTTP/1.x GET, for a later Reply. The headers
// already set on w go out with the answer, whose status is 200. gone is
// told if the client leaves first. It returns false when the poll cannot
// be parked (HTTP/2, another method, a server that is stopping): answer
// through w as usual then.
func (l *Lot) Park(w http.ResponseWriter, r *http.Request, gone Gone) (*Spot, bool) {
	if r.ProtoMajor != 1 || r.Method != http.MethodGet {
		return nil, false
	}
	if lw, ok := w.(*laneWriter); ok {
		s := &Spot{c: lw.c, head: renderHead(lw.h, r.Close), close: r.Close, gone: gone}
		lw.spot = s
		l.parked.Add(1)
		return s, true
	}
	l.mu.RLock()
	usable := !l.isClosing() && l.ln != nil
	l.mu.RUnlock()
	hj, ok := w.(http.Hijacker)
	if !usable || !ok {
		return nil, false
	}
	head := renderHead(w.Header(), r.Close)
	nc, brw, err := hj.Hijack()
	if err != nil {
		return nil, false
	}
	// net/http's deadlines for this request no longer apply: the answer
	// may take the whole wait.
	_ = nc.SetDeadline(time.Time{})
	s := &Spot{head: head, close: r.Close, gone: gone}
	if brw.Reader.Buffered() > 0 {
		// A pipelined request is already in net/http's buffer, which goes
		// with the hijack: serve this connection no further.
		s.close = true
		s.head = renderHead(w.Header(), true)
	}
	l.parked.Add(1)
	if _, ok := l.adopt(nc, s); !ok {
		l.parked.Add(-1)
		_ = nc.Close()
		return nil, false
	}
	return s, true
}

// Reply writes a 200 answer with body. Afterwards the connection serves
// the client's next request, or is closed when the client asked for that
// or the server is stopping. It reports false when the poll was already
// answered or its client had gone.
func (s *Spot) Reply(body []byte) bool {
	if !s.state.CompareAndSwap(waiting, answered) {
		return false
	}
	s.c.lot.parked.Add(-1)
	closing := s.close || s.c.lot.isClosing()
	var tail [112]byte
	t := append(tail[:0], "Content-Length: "...)
	t = strconv.AppendInt(t, int64(len(body)), 10)
	t = append(t, "\r\nDate: "...)
	t = append(t, httpDate()...)
	if closing && !s.close {
		t = append(t, "\r\nConnection: close"...)
	}
	t = append(t, "\r\n\r\n"...)
	s.c.write([][]byte{s.head, t, body}, func() { s.c.answered(closing) })
	return true
}

// left is the client closing the connection of a parked poll.
func (s *Spot) left() {
	if !s.state.CompareAndSwap(waiting, answered) {
		return
	}
	s.c.lot.parked.Add(-1)
	s.c.close()
	s.gone.Gone()
}

// drop closes a parked poll's connection without telling anyone: the Lot
// is closing.
func (s *Spot) drop() {
	if s.state.CompareAndSwap(waiting, answered) {
		s.c.lot.parked.Add(-1)
	}
}

// renderHead renders a 200 status line and the headers set so far. Every
// poll of a server sets the same headers, so the rendering is shared from a
// small cache rather than kept per parked poll; callers must not modify it.
func renderHead(h http.Header, close bool) []byte {
	var buf [512]byte
	r := append(buf[:0], "HTTP/1.1 200 OK\r\n"...)
	r = appendHeaders(r, h)
	if close {
		r = append(r, "Connection: close\r\n"...)
	}
	return heads.get(r)
}

// headCache shares rendered heads.
type headCache struct {
	mu sync.Mutex
	m  map[string][]byte
}

// maxHeads bounds the cache: past it, heads are simply not shared.
const maxHeads = 64

var heads = headCache{m: make(map[string][]byte)}

func (c *headCache) get(r []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h, ok := c.m[string(r)]; ok {
		return h
	}
	h := append([]byte(nil), r...)
	if len(c.m) < maxHeads {
		c.m[string(h)] = h
	}
	return h
}

// appendHeaders renders h, less the headers the Lot writes itself.
func appendHeaders(b []byte, h http.Header) []byte {
	for k, vs := range h {
		if k == "Content-Length" || k == "Date" || k == "Connection" {
			continue
		}
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			b = appendSanitized(b, v)
			b = append(b, "\r\n"...)
		}
	}
	return b
}

// appendSanitized appends v with CR and LF made spaces, as net/http does,
// so that a value can never start a header of its own.
func appendSanitized(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		b = append(b, c)
	}
	return b
}

// httpDate is the Date header, formatted once a second.
func httpDate() string {
	now := time.Now().Unix()
	if d := dateCache.Load(); d != nil && d.unix == now {
		return d.text
	}
	d := &date{unix: now, text: time.Unix(now, 0).UTC().Format(http.TimeFormat)}
	dateCache.Store(d)
	return d.text
}

type date struct {
	unix int64
	text string
}

var dateCache atomic.Pointer[date]
