// Package park holds idle HTTP/1.1 long polls without a goroutine, a buffer
// or a request each. A held poll's connection is taken from net/http
// (Hijack), parked here as a bare net.Conn, answered with bytes written
// straight to it, and then handed back to the same http.Server through the
// Listener, which serves the client's next request as on a new connection.
//
// With net/http alone every held poll keeps a goroutine with a deep stack,
// two bufio buffers, the request and its context: tens of KB per waiting
// browser. Parked, it is the connection and a few words.
package park

import (
	"errors"
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
	Logger       *slog.Logger
}

// Lot keeps parked connections and the listener they return through.
type Lot struct {
	opt   Options
	watch *watcher

	mu      sync.Mutex
	spots   map[*Spot]struct{}
	ln      *listener
	closed  bool
	closing bool // answers close their connections: the server is stopping
}

// New returns a Lot; Close releases it.
func New(opt Options) (*Lot, error) {
	if opt.WriteTimeout <= 0 {
		opt.WriteTimeout = 10 * time.Second
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	l := &Lot{opt: opt, spots: make(map[*Spot]struct{})}
	w, err := newWatcher(opt.Logger)
	if err != nil {
		return nil, err
	}
	l.watch = w
	return l, nil
}

// Listener wraps inner: it accepts inner's connections and those handed
// back after an answer. Serve the http.Server on it, and only one server.
func (l *Lot) Listener(inner net.Listener) net.Listener {
	ln := newListener(inner)
	l.mu.Lock()
	l.ln = ln
	l.mu.Unlock()
	return ln
}

// Len returns the number of parked connections.
func (l *Lot) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.spots)
}

// Shutdown makes every answer from now on close its connection (with
// Connection: close) instead of handing it back: call it before answering
// the held polls of a server that is stopping, so that http.Server's
// Shutdown does not wait for clients that have nothing more to send.
func (l *Lot) Shutdown() {
	l.mu.Lock()
	l.closing = true
	l.mu.Unlock()
}

// Close closes every parked connection (their Gone is not called) and
// stops watching. Answers after Close close their connection.
func (l *Lot) Close() error {
	l.mu.Lock()
	l.closed = true
	spots := l.spots
	l.spots = make(map[*Spot]struct{})
	l.mu.Unlock()
	for s := range spots {
		if s.state.CompareAndSwap(parked, done) {
			_ = s.conn.Close()
		}
	}
	if l.ln != nil {
		l.ln.drain()
	}
	return l.watch.close()
}

// Gone is told when a parked client closes its connection.
type Gone interface{ Gone() }

// Spot states.
const (
	parked int32 = iota
	done
)

// Spot is one parked connection, answered once with Reply.
type Spot struct {
	lot   *Lot
	conn  net.Conn
	head  []byte // status line and headers, less Content-Length and Date
	close bool   // the client asked for Connection: close
	gone  Gone
	id    uint64
	state atomic.Int32
}

// Park takes the connection of r, an HTTP/1.x request, from net/http. The
// headers already set on w go out with the answer, whose status is 200.
// gone is told if the client leaves first. It returns false when the
// connection cannot be parked (HTTP/2, a HEAD request, data already
// pipelined behind the request): answer through w as usual then.
func (l *Lot) Park(w http.ResponseWriter, r *http.Request, gone Gone) (*Spot, bool) {
	if r.ProtoMajor != 1 || r.Method != http.MethodGet {
		return nil, false
	}
	l.mu.Lock()
	usable := !l.closed && l.ln != nil
	l.mu.Unlock()
	if !usable {
		return nil, false
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, false
	}
	head := appendHead(nil, w.Header(), r.Close)
	conn, brw, err := hj.Hijack()
	if err != nil {
		return nil, false
	}
	s := &Spot{lot: l, conn: conn, head: head, close: r.Close, gone: gone}
	if brw.Reader.Buffered() > 0 {
		l.opt.Logger.Debug("park: pipelined request; closing after the answer", "buffered", brw.Reader.Buffered())
		// A pipelined request is already read into net/http's buffer,
		// which goes away with the hijack: serve this connection no
		// further after the answer.
		s.close = true
		s.head = appendHead(nil, w.Header(), true)
	}
	// net/http's deadlines for this request no longer apply: the answer
	// may take the whole wait. Reply sets its own write deadline.
	_ = conn.SetDeadline(time.Time{})
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		_ = conn.Close()
		return nil, false
	}
	l.spots[s] = struct{}{}
	l.mu.Unlock()
	l.watch.add(s)
	return s, true
}

// Reply writes a 200 answer with body and hands the connection back to the
// server, or closes it when the client asked to or the server is stopping.
// It reports false when the client had gone or could not take the answer.
func (s *Spot) Reply(body []byte) bool {
	if !s.state.CompareAndSwap(parked, done) {
		return false
	}
	l := s.lot
	l.watch.remove(s)
	l.mu.Lock()
	delete(l.spots, s)
	ln, closing := l.ln, l.closed || l.closing
	l.mu.Unlock()

	var tail [96]byte
	t := append(tail[:0], "Content-Length: "...)
	t = strconv.AppendInt(t, int64(len(body)), 10)
	t = append(t, "\r\nDate: "...)
	t = append(t, httpDate()...)
	if closing && !s.close {
		t = append(t, "\r\nConnection: close"...)
	}
	t = append(t, "\r\n\r\n"...)
	bufs := [][]byte{s.head, t, body}
	n, tried, err := tryWrite(s.conn, bufs)
	total := len(s.head) + len(t) + len(body)
	switch {
	case err != nil:
		l.opt.Logger.Debug("park: answer not written; closing the connection", "err", err)
		_ = s.conn.Close()
		return false
	case tried && n == total:
		s.done(ln, closing)
		return true
	}
	// The socket is full (a client not reading, or a large answer on a
	// slow link) or is TLS: finish on a goroutine of its own, so that the
	// shared goroutine answering everyone else never waits.
	rest := make([]byte, 0, total-n)
	for _, b := range bufs {
		if n >= len(b) {
			n -= len(b)
			continue
		}
		rest = append(rest, b[n:]...)
		n = 0
	}
	go func() {
		_ = s.conn.SetWriteDeadline(time.Now().Add(l.opt.WriteTimeout))
		if _, err := s.conn.Write(rest); err != nil {
			l.opt.Logger.Debug("park: answer not written; closing the connection", "err", err)
			_ = s.conn.Close()
			return
		}
		_ = s.conn.SetWriteDeadline(time.Time{})
		s.done(ln, closing)
	}()
	return true
}

// done hands the answered connection back, or closes it.
func (s *Spot) done(ln *listener, closing bool) {
	if s.close || closing {
		_ = s.conn.Close()
		return
	}
	ln.giveBack(s.conn)
}

// left is called by the watcher when the client closed its connection.
func (s *Spot) left() {
	if !s.state.CompareAndSwap(parked, done) {
		return
	}
	l := s.lot
	l.mu.Lock()
	delete(l.spots, s)
	l.mu.Unlock()
	l.opt.Logger.Debug("park: client left a held poll")
	_ = s.conn.Close()
	s.gone.Gone()
}

// appendHead renders the status line and the headers set so far.
func appendHead(b []byte, h http.Header, close bool) []byte {
	b = append(b, "HTTP/1.1 200 OK\r\n"...)
	for k, vs := range h {
		if k == "Content-Length" || k == "Date" || k == "Connection" {
			continue
		}
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, sanitize(v)...)
			b = append(b, "\r\n"...)
		}
	}
	if close {
		b = append(b, "Connection: close\r\n"...)
	}
	return b
}

// sanitize drops CR and LF from a header value, as net/http does, so a
// value can never start a header of its own.
func sanitize(v string) string {
	for i := 0; i < len(v); i++ {
		if v[i] == '\r' || v[i] == '\n' {
			b := []byte(v)
			for j := range b {
				if b[j] == '\r' || b[j] == '\n' {
					b[j] = ' '
				}
			}
			return string(b)
		}
	}
	return v
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

// listener accepts the inner listener's connections and the ones given
// back after an answer.
type listener struct {
	inner net.Listener
	back  chan net.Conn
	errs  chan error
	done  chan struct{}
	once  sync.Once
}

// backlog bounds connections given back and not yet accepted; beyond it
// they are closed (their clients reconnect).
const backlog = 1 << 14

func newListener(inner net.Listener) *listener {
	ln := &listener{inner: inner, back: make(chan net.Conn, backlog), errs: make(chan error, 1), done: make(chan struct{})}
	go ln.acceptLoop()
	return ln
}

// acceptLoop owns inner.Accept; it ends when inner is closed.
func (ln *listener) acceptLoop() {
	for {
		c, err := ln.inner.Accept()
		if err != nil {
			select {
			case ln.errs <- err:
			case <-ln.done:
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		select {
		case ln.back <- c:
		case <-ln.done:
			_ = c.Close()
			return
		}
	}
}

func (ln *listener) Accept() (net.Conn, error) {
	select {
	case c := <-ln.back:
		return c, nil
	case err := <-ln.errs:
		return nil, err
	case <-ln.done:
		return nil, net.ErrClosed
	}
}

func (ln *listener) giveBack(c net.Conn) {
	select {
	case <-ln.done:
		_ = c.Close()
		return
	default:
	}
	select {
	case ln.back <- c:
	default:
		_ = c.Close()
	}
}

func (ln *listener) Close() error {
	err := net.ErrClosed
	ln.once.Do(func() {
		close(ln.done)
		err = ln.inner.Close()
		ln.drain()
	})
	return err
}

// drain closes connections queued but never accepted.
func (ln *listener) drain() {
	for {
		select {
		case c := <-ln.back:
			_ = c.Close()
		default:
			return
		}
	}
}

func (ln *listener) Addr() net.Addr { return ln.inner.Addr() }
