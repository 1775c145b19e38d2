// Package connlimit caps the TCP connections one client address holds
// open: a client that opens connections and never reads its answers ties
// up a socket, its buffers and a goroutine per connection, and without a
// cap one address could take them all. The count sits under TLS and under
// the park, so it follows each connection to its real Close wherever that
// happens: in net/http, in the park after a hijack, or in TLS.
package connlimit

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Options configures a Listener.
type Options struct {
	// Max is how many connections one key may hold open; beyond it a new
	// connection is closed as soon as it is accepted. Below 1: no bound.
	Max int
	// Exempt, when set, names peers that are not counted: reverse proxies,
	// which carry many clients on their connections.
	Exempt func(netip.Addr) bool
}

// Listener is a net.Listener that counts its connections per client key
// (Key) and refuses those over Options.Max.
type Listener struct {
	net.Listener
	opt Options

	mu     sync.Mutex
	counts map[netip.Prefix]int

	refused atomic.Uint64
	open    atomic.Int64
}

// New wraps inner.
func New(inner net.Listener, opt Options) *Listener {
	return &Listener{Listener: inner, opt: opt, counts: make(map[netip.Prefix]int)}
}

// Key is the client key of a peer address: the address itself for IPv4,
// its /64 for IPv6, since one host is commonly given a whole /64 (as
// httpapi keys its per-address limits).
func Key(a netip.Addr) netip.Prefix {
	a = a.WithZone("").Unmap()
	bits := a.BitLen()
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// Accept returns the next connection within the cap. One over it is closed
// here and Accept goes on to the next, so a flood from one address costs
// the others only the accept and close of each of its connections.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.opt.Max < 1 {
			return c, nil
		}
		ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
		if err != nil || (l.opt.Exempt != nil && l.opt.Exempt(ap.Addr().Unmap())) {
			return c, nil
		}
		key := Key(ap.Addr())
		l.mu.Lock()
		if l.counts[key] >= l.opt.Max {
			l.mu.Unlock()
			l.refused.Add(1)
			_ = c.Close()
			continue
		}
		l.counts[key]++
		l.mu.Unlock()
		l.open.Add(1)
		return l.wrap(c, key), nil
	}
}

func (l *Listener) release(key netip.Prefix) {
	l.open.Add(-1)
	l.mu.Lock()
	if n := l.counts[key] - 1; n > 0 {
		l.counts[key] = n
	} else {
		delete(l.counts, key)
	}
	l.mu.Unlock()
}

// Refused is how many connections were closed for being over the cap.
func (l *Listener) Refused() uint64 { return l.refused.Load() }

// Open is how many counted connections are open now.
func (l *Listener) Open() int64 { return l.open.Load() }

// counted releases its key's count once, on its first Close.
type counted struct {
	l    *Listener
	key  netip.Prefix
	done atomic.Bool
}

func (c *counted) release() {
	if c.done.CompareAndSwap(false, true) {
		c.l.release(c.key)
	}
}

func (l *Listener) wrap(c net.Conn, key netip.Prefix) net.Conn {
	if tc, ok := c.(*net.TCPConn); ok {
		return &TCPConn{TCPConn: tc, counted: counted{l: l, key: key}}
	}
	return &conn{Conn: c, counted: counted{l: l, key: key}}
}

// TCPConn is a counted TCP connection. It keeps every method of the
// socket (SyscallConn, ReadFrom, CloseWrite…), and TCP gives the socket
// itself to code that reads and writes it directly (the park's lane), which
// must still close it through TCPConn.Close.
type TCPConn struct {
	*net.TCPConn
	counted
}

// TCP returns the socket under c.
func (c *TCPConn) TCP() *net.TCPConn { return c.TCPConn }

// Close closes the socket and gives its count back.
func (c *TCPConn) Close() error {
	defer c.release()
	return c.TCPConn.Close()
}

type conn struct {
	net.Conn
	counted
}

func (c *conn) Close() error {
	defer c.release()
	return c.Conn.Close()
}
