package redistest_test

import (
	"context"
	"net"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/parley-chat/parley/server/internal/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// What a restart keeps is what the options say: with AOF a graceful stop
// and a kill keep a write; without persistence nothing is kept.
func TestRestartKeepsWhatAOFKeeps(t *testing.T) {
	for _, c := range []struct {
		name string
		opt  redistest.Options
		stop func(*redistest.Server)
		kept bool
	}{
		{"aof-everysec-stop", redistest.Options{AOF: true, AppendFsync: "everysec"}, (*redistest.Server).Stop, true},
		{"aof-always-kill", redistest.Options{AOF: true}, (*redistest.Server).Kill, true},
		{"no-persistence-stop", redistest.Options{}, (*redistest.Server).Stop, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := redistest.Start(t, c.opt)
			require.Equal(t, "OK", srv.Do("SET", "k", "v"))
			addr := srv.Addr()
			c.stop(srv)
			require.False(t, srv.Running())
			srv.Restart()
			require.Equal(t, addr, srv.Addr(), "same port")
			require.Equal(t, c.kept, srv.Do("EXISTS", "k") == int64(1))
			require.Equal(t, c.opt.AOF, len(srv.AOFFiles()) > 0)
			require.Contains(t, srv.Logs(), "Ready to accept connections")
		})
	}
}

// A frozen proxy keeps the connection open but passes nothing; new
// connections through it work.
func TestProxyFreeze(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	p := redistest.NewProxy(t, srv)
	ctx := context.Background()
	before, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer before.Close()
	_, err = before.Write([]byte("PING\r\n"))
	require.NoError(t, err)
	buf := make([]byte, 16)
	n, err := before.Read(buf)
	require.NoError(t, err)
	require.Equal(t, "+PONG\r\n", string(buf[:n]))

	p.Freeze()
	_, err = before.Write([]byte("PING\r\n"))
	require.NoError(t, err)
	require.NoError(t, before.SetReadDeadline(time.Now().Add(200*time.Millisecond)))
	_, err = before.Read(buf)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "nothing comes back, and nothing closes")

	after := redis.NewClient(&redis.Options{Addr: p.Addr(), MaxRetries: -1})
	defer after.Close()
	require.NoError(t, after.Ping(ctx).Err())
}
