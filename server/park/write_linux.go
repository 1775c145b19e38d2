package park

import (
	"errors"
	"net"

	"golang.org/x/sys/unix"
)

// tryWrite writes as much of bufs as the socket takes now, without
// blocking and without a deadline, and returns how many bytes went. ok is
// false when c is not a plain socket (TLS must go through its own Write).
// A deadline would be the wrong tool on a shared goroutine: on a busy
// machine it can pass before the write is even tried.
func tryWrite(c net.Conn, bufs [][]byte) (n int, ok bool, err error) {
	tc, isTCP := c.(*net.TCPConn)
	if !isTCP {
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
		return true // never wait here: the caller finishes slow writes elsewhere
	})
	if errors.Is(err, unix.EAGAIN) {
		n, err = 0, nil
	}
	if n < 0 {
		n = 0
	}
	return n, true, errors.Join(cerr, err)
}
