package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parley-chat/parley/server/internal/tier"
	"github.com/parley-chat/parley/shared"
)

func TestParseTrustedProxies(t *testing.T) {
	c, err := parseConfig([]string{"-trusted-proxies", "127.0.0.1, 10.0.0.0/8,::1"}, env(nil), nil)
	require.NoError(t, err)
	ps, err := parsePrefixes(c.proxies)
	require.NoError(t, err)
	require.Equal(t, []netip.Prefix{
		netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128"),
	}, ps)
}

// freePorts returns n loopback ports free a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return ports
}

// make run-cluster's script: Redis, three instances and nginx come up;
// through nginx a session is made, a message sent and polled from every
// instance in turn; Ctrl-C (SIGINT) stops every process.
func TestRunClusterScript(t *testing.T) {
	tier.Require(t, "redis-server, nginx and the parley binary")
	ports := freePorts(t, 5)
	script, err := filepath.Abs("run-cluster.sh")
	require.NoError(t, err)
	cmd := exec.Command("bash", script)
	cmd.Env = append(os.Environ(),
		"BIN="+parleyBin, "WEB="+t.TempDir(),
		fmt.Sprint("PORT=", ports[0]), fmt.Sprint("REDIS_PORT=", ports[1]),
		fmt.Sprintf("PARLEY_PORTS=%d %d %d", ports[2], ports[3], ports[4]))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Ctrl-C reaches the group
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if t.Failed() {
			t.Logf("run-cluster output:\n%s", out.String())
		}
	})
	base := fmt.Sprint("http://127.0.0.1:", ports[0])
	waitHealthy(t, base)

	hc := newClient(t)
	tok := createSession(t, hc, base, "via-nginx")
	r := send(context.Background(), hc, func() string { return base }, tok, "lobby", "through the balancer", "1")
	require.NoError(t, r.err)
	require.Equal(t, http.StatusCreated, r.status)
	for range 3 { // round robin: each instance answers once
		pr, status, err := poll(context.Background(), hc, base, "lobby", shared.PollRequest{After: shared.Ptr(r.msg.Seq - 1), Wait: shared.Ptr(1)})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status)
		require.NotEmpty(t, pr.Messages)
		require.Equal(t, "through the balancer", pr.Messages[len(pr.Messages)-1].Text)
	}

	require.NoError(t, syscall.Kill(-cmd.Process.Pid, syscall.SIGINT))
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		t.Fatal("run-cluster did not stop on SIGINT")
	}
	require.Contains(t, out.String(), "run-cluster: stopped")
	for _, p := range ports {
		c, err := net.DialTimeout("tcp", fmt.Sprint("127.0.0.1:", p), time.Second)
		if err == nil {
			_ = c.Close()
			t.Errorf("port %d still answers after the stop", p)
		}
	}
}
