package loadkit

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestListenAddr(t *testing.T) {
	a, ok := ListenAddr(`time=2026-11-30T14:22:57.516Z level=INFO msg="parley listening" addr=127.0.0.1:39147 tls=false store=memory`)
	require.True(t, ok)
	require.Equal(t, "127.0.0.1:39147", a)
	for _, line := range []string{
		`time=x level=INFO msg="session created" name=zed addr=127.0.0.1:1`,
		`time=x level=INFO msg="parley listening"`,
	} {
		_, ok := ListenAddr(line)
		require.False(t, ok, line)
	}
}
