package park

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// poller holds every connection of the Lot in a few epoll sets,
// edge-triggered for data and for the peer's FIN, registered once per
// connection (not once per poll). Each set is itself watched by Go's own
// network poller: its goroutine sleeps like any goroutine waiting on a
// socket, and wakes when the set has events. A goroutine blocked in
// epoll_wait instead would hold an OS thread in a system call, which the
// runtime answers by handing its P to another thread and taking it back
// afterwards: measured, that costs more than the requests themselves. Event
// data carries the connection's id, never its file descriptor, so a
// descriptor closed and reused meanwhile cannot be mistaken for another
// client.
type poller struct {
	lot    *Lot
	shards []*shard
	stop   chan struct{}
	wg     sync.WaitGroup
}

// shard is one epoll set and the goroutine that serves its events.
type shard struct {
	epfd int
	f    *os.File // epfd, known to Go's network poller
	rc   syscall.RawConn
}

func newPoller(l *Lot) (*poller, error) {
	p := &poller{lot: l, stop: make(chan struct{})}
	for range pollers() {
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err == nil {
			// Non-blocking, os.NewFile hands the descriptor to Go's poller.
			err = unix.SetNonblock(epfd, true)
		}
		if err != nil {
			_ = p.close()
			return nil, fmt.Errorf("park: epoll_create1: %w", err)
		}
		f := os.NewFile(uintptr(epfd), "epoll")
		rc, err := f.SyscallConn()
		if err != nil {
			_ = f.Close()
			_ = p.close()
			return nil, fmt.Errorf("park: epoll fd: %w", err)
		}
		p.shards = append(p.shards, &shard{epfd: epfd, f: f, rc: rc})
	}
	for _, sh := range p.shards {
		p.wg.Add(1)
		go p.serve(sh)
	}
	p.wg.Add(1)
	go p.sweep()
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
	epfd := p.shard(c).epfd
	cerr := c.rc.Control(func(fd uintptr) {
		err = unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
	})
	return errors.Join(cerr, err)
}

func (p *poller) shard(c *conn) *shard { return p.shards[c.id%uint64(len(p.shards))] }

// del takes c out of the set before its socket goes back to net/http.
func (p *poller) del(c *conn) {
	epfd := p.shard(c).epfd
	_ = c.rc.Control(func(fd uintptr) {
		_ = unix.EpollCtl(epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
	})
}

// serve handles sh's events until close.
func (p *poller) serve(sh *shard) {
	defer p.wg.Done()
	l := p.lot
	events := make([]unix.EpollEvent, 128)
	for {
		var n int
		var werr error
		err := sh.rc.Read(func(fd uintptr) bool {
			n, werr = unix.EpollWait(int(fd), events, 0)
			if errors.Is(werr, unix.EINTR) {
				n, werr = 0, nil
			}
			return n > 0 || werr != nil // nothing yet: sleep in Go's poller
		})
		if err != nil || werr != nil {
			select {
			case <-p.stop: // closed by close: not an error
			default:
				l.opt.Logger.Error("park: epoll_wait", "err", errors.Join(err, werr))
			}
			return
		}
		if l.opt.Defer != nil {
			if ch := l.opt.Defer(); ch != nil {
				select {
				case <-ch: // answers are being written: they go first
				case <-p.stop:
					return
				}
			}
		}
		for i := range n {
			if c := l.connByID(idOf(&events[i])); c != nil {
				c.event(events[i].Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0)
			}
			if i%16 == 15 {
				// Serving is system calls that never block: yield, so that
				// goroutines readied meanwhile (a sender, a fan-out worker)
				// do not wait for a whole time slice.
				runtime.Gosched()
			}
		}
	}
}

// sweep closes the lane connections that outstayed their timeouts, once a
// second.
func (p *poller) sweep() {
	defer p.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			p.lot.sweep(now)
		}
	}
}

func (p *poller) close() error {
	close(p.stop)
	var err error
	for _, sh := range p.shards {
		err = errors.Join(err, sh.f.Close()) // wakes its goroutine with ErrClosed
	}
	p.wg.Wait()
	return err
}

// The socket calls below are made with RawSyscall: on a non-blocking
// socket they never wait, and telling the runtime about them (as
// syscall.Syscall does) only invites its monitor to hand the goroutine's P
// to another thread whenever one runs past 20 µs, as a write to a loopback
// socket does when it runs the receiver's side too. Measured with perf, that
// monitor and its thread switches took 7% of the server's time.

// tryRead reads what the socket has now, without waiting: n == 0 with no
// error and no eof means nothing is there.
func tryRead(rc syscall.RawConn, b []byte) (n int, eof bool, err error) {
	if len(b) == 0 {
		return 0, false, nil
	}
	var errno syscall.Errno
	// Control, not Read: it holds the descriptor open just the same, so a
	// concurrent close cannot hand its number to another connection, but
	// skips the poll descriptor's reset that Read makes for a goroutine
	// about to wait in Go's poller, which this never does (2% of the
	// server's CPU in the fan-out profile).
	cerr := rc.Control(func(fd uintptr) {
		for {
			r, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
			n, errno = int(r), e
			if errno != unix.EINTR {
				break
			}
		}
	})
	switch {
	case cerr != nil:
		return 0, false, cerr
	case errno == unix.EAGAIN:
		return 0, false, nil
	case errno != 0:
		return 0, false, errno
	case n == 0:
		return 0, true, nil
	}
	return n, false, nil
}

// writeRaw returns the socket of nc when answers may be written to it
// directly: plain TCP, not TLS, which must go through its own Write.
func writeRaw(nc net.Conn) syscall.RawConn {
	tc := tcpOf(nc)
	if tc == nil {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// tryWrite writes as much of bufs as the socket rc (from writeRaw) takes
// now, without blocking, and returns how many bytes went. tried is false
// when there is no socket to write to directly.
func tryWrite(rc syscall.RawConn, bufs [][]byte) (n int, tried bool, err error) {
	if rc == nil {
		return 0, false, nil
	}
	var iov [4]unix.Iovec
	k := 0
	for _, b := range bufs {
		if len(b) > 0 && k < len(iov) {
			iov[k].Base = &b[0]
			iov[k].SetLen(len(b))
			k++
		}
	}
	if k == 0 {
		return 0, true, nil
	}
	var errno syscall.Errno
	cerr := rc.Control(func(fd uintptr) { // Control: see tryRead
		for {
			r, _, e := unix.RawSyscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(k))
			n, errno = int(r), e
			if errno != unix.EINTR {
				break
			}
		}
	})
	runtime.KeepAlive(bufs)
	switch {
	case cerr != nil:
		return 0, true, cerr
	case errno == unix.EAGAIN:
		return 0, true, nil
	case errno != 0:
		return 0, true, errno
	}
	return n, true, nil
}
