package park

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// poller is one epoll set holding every connection of the Lot,
// edge-triggered for data and for the peer's FIN, and one goroutine waiting
// on it. Registering once per connection (not once per poll) keeps system
// calls off the hot path. Event data carries the connection's id, never its
// file descriptor, so a descriptor closed and reused meanwhile cannot be
// mistaken for another client.
type poller struct {
	lot  *Lot
	epfd int
	wake int // eventfd that ends the wait
	wg   sync.WaitGroup
}

func newPoller(l *Lot) (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("park: epoll_create1: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("park: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setID(&ev, 0)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		_ = unix.Close(epfd)
		_ = unix.Close(wake)
		return nil, fmt.Errorf("park: epoll_ctl eventfd: %w", err)
	}
	p := &poller{lot: l, epfd: epfd, wake: wake}
	for i := range pollers() {
		p.wg.Add(1)
		go p.wait(i == 0)
	}
	return p, nil
}

func setID(ev *unix.EpollEvent, id uint64) {
	ev.Fd = int32(uint32(id))
	ev.Pad = int32(uint32(id >> 32))
}

func idOf(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// rawConn finds the socket under nc (TCP, or TLS over TCP); nil if none.
func rawConn(nc net.Conn) syscall.RawConn {
	if t, ok := nc.(*tls.Conn); ok {
		nc = t.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

func (p *poller) add(c *conn) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET}
	setID(&ev, c.id)
	var err error
	cerr := c.rc.Control(func(fd uintptr) {
		err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
	})
	return errors.Join(cerr, err)
}

// del takes c out of the set before its socket goes back to net/http.
func (p *poller) del(c *conn) {
	_ = c.rc.Control(func(fd uintptr) {
		_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
	})
}

// wait serves the events of the set until close; the sweeper also closes
// the lane connections that outstayed their timeouts, once a second.
func (p *poller) wait(sweeper bool) {
	defer p.wg.Done()
	l := p.lot
	events := make([]unix.EpollEvent, 128)
	lastSweep := time.Now()
	for {
		n, err := unix.EpollWait(p.epfd, events, 1000)
		if err != nil && !errors.Is(err, unix.EINTR) {
			l.opt.Logger.Error("park: epoll_wait", "err", err)
			return
		}
		if n > 0 && l.opt.Defer != nil {
			if ch := l.opt.Defer(); ch != nil {
				<-ch // answers are being written: they go first
			}
		}
		for i := range max(n, 0) {
			id := idOf(&events[i])
			if id == 0 {
				return // woken by close
			}
			if c := l.connByID(id); c != nil {
				c.event(events[i].Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0)
			}
			if i%16 == 15 {
				// Serving is system calls that never block: yield, so that
				// goroutines readied meanwhile (a sender, a fan-out worker)
				// do not wait for a whole time slice.
				runtime.Gosched()
			}
		}
		if now := time.Now(); sweeper && now.Sub(lastSweep) >= time.Second {
			lastSweep = now
			l.sweep(now)
		}
	}
}

func (p *poller) close() error {
	one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
	_, _ = unix.Write(p.wake, one) // level-triggered: every poller sees it
	p.wg.Wait()
	return errors.Join(unix.Close(p.epfd), unix.Close(p.wake))
}

// tryRead reads what the socket has now, without waiting: n == 0 with no
// error and no eof means nothing is there.
func tryRead(rc syscall.RawConn, b []byte) (n int, eof bool, err error) {
	cerr := rc.Read(func(fd uintptr) bool {
		for {
			n, err = unix.Read(int(fd), b)
			if !errors.Is(err, unix.EINTR) {
				break
			}
		}
		return true // never park this goroutine: the poller says when to read
	})
	switch {
	case errors.Is(err, unix.EAGAIN):
		return 0, false, nil
	case err != nil || cerr != nil:
		return 0, false, errors.Join(cerr, err)
	case n == 0 && len(b) > 0:
		return 0, true, nil
	}
	return n, false, nil
}

// tryWrite writes as much of bufs as the socket takes now, without
// blocking, and returns how many bytes went. tried is false when nc is not
// a plain socket (TLS must go through its own Write).
func tryWrite(nc net.Conn, bufs [][]byte) (n int, tried bool, err error) {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return 0, false, nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	cerr := rc.Write(func(fd uintptr) bool {
		for {
			n, err = unix.Writev(int(fd), bufs)
			if !errors.Is(err, unix.EINTR) {
				break
			}
		}
		return true
	})
	if errors.Is(err, unix.EAGAIN) {
		n, err = 0, nil
	}
	return max(n, 0), true, errors.Join(cerr, err)
}
