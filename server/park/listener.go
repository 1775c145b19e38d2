package park

import (
	"errors"
	"net"
	"sync"
)

// listener accepts the inner listener's connections and the ones the Lot
// hands back to the http.Server.
type listener struct {
	inner net.Listener
	back  chan net.Conn
	errs  chan error
	done  chan struct{}
	once  sync.Once
}

// backlog bounds connections handed back and not yet accepted; beyond it
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

// tcpOf returns the TCP socket under nc: nc itself, or the socket of a
// connection that wraps one with a Close of its own (connlimit.TCPConn),
// which the park must still close through nc. Nil when nc is not a plain
// socket (TLS, or anything else): those are not read and written directly.
func tcpOf(nc net.Conn) *net.TCPConn {
	switch c := nc.(type) {
	case *net.TCPConn:
		return c
	case interface{ TCP() *net.TCPConn }:
		return c.TCP()
	}
	return nil
}
