//go:build !linux

package park

import (
	"net"
	"syscall"
)

// poller is absent where there is no epoll: parked clients that leave are
// noticed when their answer is written, and there is no lane.
type poller struct{}

func newPoller(*Lot) (*poller, error) { return nil, nil }
func (*poller) add(*conn) error       { return nil }
func (*poller) del(*conn)             {}
func (*poller) close() error          { return nil }

func rawConn(net.Conn) syscall.RawConn { return nil }

func tryRead(syscall.RawConn, []byte) (int, bool, error) { return 0, false, nil }

func writeRaw(net.Conn) syscall.RawConn { return nil }

func tryWrite(syscall.RawConn, [][]byte) (int, bool, error) { return 0, false, nil }
