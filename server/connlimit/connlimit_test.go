package connlimit_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/parley-chat/parley/server/connlimit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echo serves ln until it is closed: each connection answers every line
// with the line, until its client closes it.
func echo(t *testing.T, ln net.Listener) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			})
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
}

// served reports whether c answers a line within a second; a connection
// refused by the cap reads EOF (or a reset) at once instead.
func served(t *testing.T, c net.Conn) bool {
	t.Helper()
	require.NoError(t, c.SetDeadline(time.Now().Add(2*time.Second)))
	if _, err := fmt.Fprintln(c, "ping"); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "ping\n"
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestCapPerAddress(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln := connlimit.New(inner, connlimit.Options{Max: 3})
	echo(t, ln)
	addr := inner.Addr().String()

	var held []net.Conn
	for range 3 {
		c := dial(t, addr)
		require.True(t, served(t, c))
		held = append(held, c)
	}
	extra := dial(t, addr)
	start := time.Now()
	require.False(t, served(t, extra), "the fourth connection from one address is closed")
	require.Less(t, time.Since(start), time.Second, "at once, not after a timeout")
	require.EqualValues(t, 1, ln.Refused())
	for _, c := range held {
		require.True(t, served(t, c), "the others are still served")
	}

	// One closes: its count comes back once the server closes its end.
	require.NoError(t, held[0].Close())
	require.Eventually(t, func() bool { return ln.Open() == 2 }, 2*time.Second, 5*time.Millisecond)
	require.True(t, served(t, dial(t, addr)))
	require.EqualValues(t, 1, ln.Refused())
}

func TestExemptPeersAreNotCounted(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	proxy := netip.MustParsePrefix("127.0.0.0/8")
	ln := connlimit.New(inner, connlimit.Options{Max: 1, Exempt: proxy.Contains})
	echo(t, ln)
	for range 5 {
		require.True(t, served(t, dial(t, inner.Addr().String())))
	}
	require.Zero(t, ln.Refused())
}

func TestNoBound(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln := connlimit.New(inner, connlimit.Options{Max: -1})
	echo(t, ln)
	for range 5 {
		require.True(t, served(t, dial(t, inner.Addr().String())))
	}
}

func TestKeyCutsIPv6ToItsSlash64(t *testing.T) {
	k := func(s string) string { return connlimit.Key(netip.MustParseAddr(s)).String() }
	require.Equal(t, "2001:db8:1:2::/64", k("2001:db8:1:2::1"))
	require.Equal(t, k("2001:db8:1:2::1"), k("2001:db8:1:2:ffff:ffff:ffff:ffff"))
	require.NotEqual(t, k("2001:db8:1:2::1"), k("2001:db8:1:3::1"))
	require.Equal(t, k("2001:db8:1:2::1"), k("2001:db8:1:2::1%eth0"))
	require.Equal(t, "192.0.2.7/32", k("192.0.2.7"))
	require.Equal(t, "192.0.2.7/32", k("::ffff:192.0.2.7"), "an IPv4-mapped address is its IPv4")
	require.NotEqual(t, k("192.0.2.7"), k("192.0.2.8"))
}

// TestCountFollowsTheSocketsOwnClose: a counted connection keeps the
// socket's methods, hands the socket to code that works on it directly,
// and gives its count back once however often it is closed.
func TestCountFollowsTheSocketsOwnClose(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln := connlimit.New(inner, connlimit.Options{Max: 1})
	defer ln.Close()
	client := dial(t, inner.Addr().String())
	c, err := ln.Accept()
	require.NoError(t, err)
	tc, ok := c.(*connlimit.TCPConn)
	require.True(t, ok)
	require.NotNil(t, tc.TCP())
	_, ok = c.(interface{ CloseWrite() error })
	require.True(t, ok, "CloseWrite, ReadFrom, SyscallConn… stay")
	require.EqualValues(t, 1, ln.Open())
	require.NoError(t, c.Close())
	_ = c.Close()
	require.Zero(t, ln.Open())
	_ = client
}
