package park

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// watcher learns that a parked client closed its connection, with no
// goroutine per connection: one epoll set holds every parked socket, armed
// one-shot for EPOLLRDHUP (the peer's FIN), and one goroutine waits on it.
// Event data carries a Spot id, never a file descriptor, so a descriptor
// closed and reused meanwhile cannot be mistaken for another client.
type watcher struct {
	log  *slog.Logger
	epfd int
	wake int // eventfd that ends wait

	mu     sync.Mutex
	byID   map[uint64]*Spot
	nextID uint64
	closed bool
	done   chan struct{}
}

func newWatcher(log *slog.Logger) (*watcher, error) {
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
	w := &watcher{log: log, epfd: epfd, wake: wake, byID: make(map[uint64]*Spot), done: make(chan struct{})}
	go w.wait()
	return w, nil
}

func setID(ev *unix.EpollEvent, id uint64) {
	ev.Fd = int32(uint32(id))
	ev.Pad = int32(uint32(id >> 32))
}

func idOf(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// rawConn finds the socket under c (TCP, or TLS over TCP).
func rawConn(c net.Conn) (syscall.RawConn, bool) {
	if t, ok := c.(*tls.Conn); ok {
		c = t.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, false
	}
	rc, err := sc.SyscallConn()
	return rc, err == nil
}

// add watches s until remove or its event.
func (w *watcher) add(s *Spot) {
	rc, ok := rawConn(s.conn)
	if !ok {
		return // not a socket: the answer or the wait's end still comes
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.nextID++
	s.id = w.nextID
	w.byID[s.id] = s
	w.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLRDHUP | unix.EPOLLONESHOT}
	setID(&ev, s.id)
	var err error
	cerr := rc.Control(func(fd uintptr) {
		// A connection parked before is still in the set, disarmed by
		// its one-shot: re-arm it with the new id.
		err = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_MOD, int(fd), &ev)
		if errors.Is(err, unix.ENOENT) {
			err = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
		}
	})
	if err = errors.Join(cerr, err); err != nil {
		w.log.Debug("park: cannot watch connection", "err", err)
		w.remove(s)
	}
}

// remove stops reporting s. Its socket stays in the set, disarmed, until
// it is closed (closing removes it) or parked again (re-armed): that saves
// a system call per answer.
func (w *watcher) remove(s *Spot) {
	if s.id == 0 {
		return
	}
	w.mu.Lock()
	delete(w.byID, s.id)
	w.mu.Unlock()
}

func (w *watcher) wait() {
	defer close(w.done)
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(w.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			w.log.Error("park: epoll_wait", "err", err)
			return
		}
		var gone []*Spot
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			return
		}
		for i := range n {
			id := idOf(&events[i])
			if s := w.byID[id]; s != nil {
				delete(w.byID, id)
				gone = append(gone, s)
			}
		}
		w.mu.Unlock()
		for _, s := range gone {
			s.left()
		}
	}
}

func (w *watcher) close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
	_, _ = unix.Write(w.wake, one)
	<-w.done
	return errors.Join(unix.Close(w.epfd), unix.Close(w.wake))
}
