package park

import (
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// Connection states.
const (
	idle   = iota // waiting for the client's next request (lane only)
	busy          // a request is being read or served (lane only)
	parked        // a poll is held
	closed
)

// conn is one connection the Lot holds: from the hijack of its first held
// poll until it is closed or handed back to net/http.
type conn struct {
	lot    *Lot
	nc     net.Conn
	rc     syscall.RawConn // the socket, nil if there is none to watch
	wc     syscall.RawConn // the socket when answers go to it directly (plain TCP), or nil
	lane   bool            // plain TCP on a Lot with a lane: requests are read here
	id     uint64
	remote string

	mu       sync.Mutex
	state    int
	spot     *Spot
	readable bool      // something arrived while busy or parked
	replied  bool      // the poll was answered while its handler still ran
	buf      []byte    // a request read in part
	idleAt   time.Time // when it last became idle
	headAt   time.Time // when the request in buf began to arrive

	hdr http.Header // the lane writer's headers, reused request after request
}

// adopt takes a hijacked connection with its parked poll s.
func (l *Lot) adopt(nc net.Conn, s *Spot) (*conn, bool) {
	c := &conn{lot: l, nc: nc, remote: nc.RemoteAddr().String(), state: parked, spot: s, wc: writeRaw(nc)}
	s.c = c // before the poller can know c
	if l.poll != nil {
		c.rc = rawConn(nc)
		c.lane = tcpOf(nc) != nil && l.handler != nil && c.rc != nil
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, false
	}
	l.nextID++
	c.id = l.nextID
	l.conns[c.id] = c
	l.mu.Unlock()
	if c.rc != nil {
		if err := l.poll.add(c); err != nil {
			l.opt.Logger.Debug("park: cannot watch connection", "err", err)
			c.rc, c.lane = nil, false
		}
	}
	return c, true
}

// event is the poller's news for c: data, or the client closing.
func (c *conn) event(hup bool) {
	c.mu.Lock()
	switch c.state {
	case idle:
		c.state = busy
		c.mu.Unlock()
		c.serve()
	case parked:
		if hup {
			s := c.spot
			c.mu.Unlock()
			s.left()
			return
		}
		// A request pipelined behind the held poll: read after the answer.
		c.readable = true
		c.mu.Unlock()
	case busy:
		c.readable = true
		c.mu.Unlock()
	default:
		c.mu.Unlock()
	}
}

// answered is called once a parked poll's answer is written.
func (c *conn) answered(closing bool) {
	c.mu.Lock()
	c.spot = nil
	if c.state == busy {
		// The handler that parked the poll has not returned yet: serve
		// finishes the move to idle.
		c.replied = true
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.next(closing)
}

// next moves c on after an answer: to its next request, or closed.
func (c *conn) next(closing bool) {
	switch {
	case closing:
		c.close()
	case c.lane:
		c.toIdle()
	default:
		// Not ours to read: hand it back to the http.Server.
		if c.rc != nil {
			c.lot.poll.del(c)
		}
		if c.forget() {
			c.lot.giveBack(c.nc)
		}
	}
}

// toIdle waits for the next request, or reads it now if it already came.
func (c *conn) toIdle() {
	c.mu.Lock()
	if c.state == closed {
		c.mu.Unlock()
		return
	}
	if c.readable {
		// A request came while the poll was parked: no new edge will
		// announce it, so read it now, off the answering goroutine.
		c.readable = false
		c.state = busy
		c.mu.Unlock()
		go c.serve()
		return
	}
	c.state = idle
	c.idleAt = time.Now()
	c.mu.Unlock()
}

// forget removes c from the Lot; it reports false if c was closed already.
func (c *conn) forget() bool {
	c.mu.Lock()
	if c.state == closed {
		c.mu.Unlock()
		return false
	}
	c.state = closed
	s := c.spot
	c.mu.Unlock()
	if s != nil {
		s.drop()
	}
	c.lot.mu.Lock()
	delete(c.lot.conns, c.id)
	c.lot.mu.Unlock()
	c.releaseBuf()
	return true
}

// close closes c's socket (which also takes it out of the epoll set).
func (c *conn) close() {
	if c.forget() {
		_ = c.nc.Close()
	}
}

// closeIfIdle closes c if it is waiting for a request: the server is
// stopping.
func (c *conn) closeIfIdle() {
	c.mu.Lock()
	isIdle := c.state == idle
	c.mu.Unlock()
	if isIdle {
		c.close()
	}
}

// sweep closes c if it idled or dawdled over its headers too long.
func (c *conn) sweep(now time.Time) {
	c.mu.Lock()
	expired := c.state == idle &&
		(now.Sub(c.idleAt) > c.lot.opt.IdleTimeout || len(c.buf) > 0 && now.Sub(c.headAt) > c.lot.opt.HeaderTimeout)
	c.mu.Unlock()
	if expired {
		c.close()
	}
}

// write sends bufs and then calls after. What the socket takes at once is
// written here, without blocking and without a deadline (a deadline is the
// wrong tool on goroutines shared by everyone: on a busy machine it can
// pass before the write is even tried). The rest, for a client not reading
// or a large answer on a slow link, and everything over TLS, is written on
// a goroutine of its own, bounded by WriteTimeout.
func (c *conn) write(bufs [][]byte, after func()) {
	n, tried, err := tryWrite(c.wc, bufs)
	total := 0
	for _, b := range bufs {
		total += len(b)
	}
	switch {
	case err != nil:
		c.lot.opt.Logger.Debug("park: answer not written; closing the connection", "err", err)
		c.close()
		return
	case tried && n == total:
		after()
		return
	}
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
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.lot.opt.WriteTimeout))
		if _, err := c.nc.Write(rest); err != nil {
			c.lot.opt.Logger.Debug("park: answer not written; closing the connection", "err", err)
			c.close()
			return
		}
		_ = c.nc.SetWriteDeadline(time.Time{})
		after()
	}()
}

func (l *Lot) giveBack(nc net.Conn) {
	l.handed.Add(1)
	l.mu.RLock()
	ln := l.ln
	l.mu.RUnlock()
	if ln == nil {
		_ = nc.Close()
		return
	}
	ln.giveBack(nc)
}

// sweep closes lane connections that outstayed their timeouts.
func (l *Lot) sweep(now time.Time) {
	l.mu.RLock()
	conns := l.snapshot()
	l.mu.RUnlock()
	for _, c := range conns {
		c.sweep(now)
	}
}

// connByID finds a held connection for the poller.
func (l *Lot) connByID(id uint64) *conn {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.conns[id]
}
