package redistest

import (
	"net"
	"sync"
	"testing"
)

// Proxy is a TCP proxy in front of a Server that can wedge its connections:
// Freeze stops forwarding on every connection open now while keeping them
// open, as a stuck middlebox or a half-dead peer after a failover would.
// Redis then still counts a subscriber behind a frozen connection and
// PUBLISH keeps succeeding, yet nothing arrives: the failure a pub/sub
// liveness probe must notice. Connections made after Freeze work normally.
type Proxy struct {
	l      net.Listener
	target string

	mu     sync.Mutex
	conns  []*proxyConn
	closed bool
	wg     sync.WaitGroup
}

type proxyConn struct {
	client, server net.Conn
	mu             sync.Mutex
	frozen         bool
	thaw           *sync.Cond
}

// NewProxy listens on a free loopback port and forwards to s; it is closed
// at the test's end.
func NewProxy(t testing.TB, s *Server) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: proxy listen: %v", err)
	}
	p := &Proxy{l: l, target: s.Addr()}
	p.wg.Go(p.accept)
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port, to give to the client under test.
func (p *Proxy) Addr() string { return p.l.Addr().String() }

func (p *Proxy) accept() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		srv, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		pc := &proxyConn{client: c, server: srv}
		pc.thaw = sync.NewCond(&pc.mu)
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = c.Close()
			_ = srv.Close()
			return
		}
		p.conns = append(p.conns, pc)
		p.wg.Go(func() { pc.pipe(srv, c) })
		p.wg.Go(func() { pc.pipe(c, srv) })
		p.mu.Unlock()
	}
}

// pipe copies from src to dst, holding each chunk while the connection is
// frozen; closing either end ends both directions.
func (pc *proxyConn) pipe(dst, src net.Conn) {
	defer pc.close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			pc.mu.Lock()
			for pc.frozen {
				pc.thaw.Wait()
			}
			pc.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (pc *proxyConn) close() {
	_ = pc.client.Close()
	_ = pc.server.Close()
}

// Freeze wedges every connection open now: bytes stop flowing both ways but
// neither end sees the connection close.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pc := range p.conns {
		pc.mu.Lock()
		pc.frozen = true
		pc.mu.Unlock()
	}
}

// Close stops the proxy and closes every connection, frozen or not.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	_ = p.l.Close()
	for _, pc := range p.conns {
		pc.mu.Lock()
		pc.frozen = false
		pc.thaw.Broadcast()
		pc.mu.Unlock()
		pc.close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
