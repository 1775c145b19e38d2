package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parley-chat/parley/shared"
)

// cluster is make run-cluster's script: redis-server, two parley instances
// on it and nginx in front as a round-robin balancer with no stickiness.
type cluster struct {
	URL       string   // nginx
	instances []string // each parley instance, for checks behind the balancer
}

func port(t *testing.T) string {
	_, p, err := net.SplitHostPort(freeAddr(t))
	require.NoError(t, err)
	return p
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	nginxPort, redisPort, a, b := port(t), port(t), port(t), port(t)
	cmd := exec.Command("bash", filepath.Join(repoRoot, "server", "cmd", "parley", "run-cluster.sh"))
	cmd.Env = append(os.Environ(), "BIN="+serverBin, "WEB="+webDir, "PORT="+nginxPort,
		"REDIS_PORT="+redisPort, "PARLEY_PORTS="+a+" "+b)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		// Ctrl-C, as a person would; then make sure.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("run-cluster output:\n%s", tail(logs.String(), 4000))
		}
	})
	c := &cluster{URL: "http://127.0.0.1:" + nginxPort, instances: []string{"http://127.0.0.1:" + a, "http://127.0.0.1:" + b}}
	deadline := time.Now().Add(30 * time.Second)
	for _, u := range append([]string{c.URL}, c.instances...) {
		for {
			resp, err := http.Get(u + "/healthz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not become healthy:\n%s", u, logs.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return c
}

// members asks one instance, behind the balancer, who is in room.
func members(t *testing.T, instance, room string) []string {
	t.Helper()
	resp, err := http.Get(instance + "/api/rooms/" + room + "/members")
	require.NoError(t, err)
	defer resp.Body.Close()
	var m shared.MembersResponse
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
	var names []string
	for _, x := range m.Members {
		names = append(names, x.Name)
	}
	sort.Strings(names)
	return names
}

// Two people chat through nginx over two instances on one Redis, with no
// sticky sessions, so polls and sends land on either instance; one of them
// reloads; both see every message once, in order, and both instances agree
// on who is here.
func TestChatThroughNginxOverTwoInstances(t *testing.T) {
	c := startCluster(t)
	b := newBrowser(t)
	alice := b.firstTab("alice")
	bob := b.isolatedTab("bob")
	alice.enterLobby(c.URL, "alice")
	bob.enterLobby(c.URL, "bob")

	var want []string
	for i := range 3 {
		a := fmt.Sprintf("alice says %d", i)
		alice.send(a)
		bob.waitText(a, 15*time.Second)
		r := fmt.Sprintf("bob answers %d", i)
		bob.send(r)
		alice.waitText(r, 15*time.Second)
		want = append(want, a, r)
	}

	bob.navigate(c.URL + "/r/lobby")
	bob.ready()
	bob.inRoom("lobby")
	bob.waitText(want[len(want)-1], 15*time.Second)
	alice.send("after the reload")
	bob.waitText("after the reload", 15*time.Second)
	want = append(want, "after the reload")
	time.Sleep(500 * time.Millisecond) // let the polls in flight come back

	for _, tb := range []*tab{alice, bob} {
		seqs := tb.seqs()
		require.True(t, sort.IntsAreSorted(seqs), "%v", seqs)
		for j := 1; j < len(seqs); j++ {
			require.NotEqual(t, seqs[j-1], seqs[j], "duplicate seq in %v", seqs)
		}
		var texts []string
		for _, s := range tb.texts() {
			if strings.Contains(s, " says ") || strings.Contains(s, " answers ") || s == "after the reload" {
				texts = append(texts, s)
			}
		}
		require.Equal(t, want, texts, "every message once, in order")
	}
	for _, inst := range c.instances {
		require.Eventually(t, func() bool {
			m := members(t, inst, "lobby")
			return len(m) == 2 && m[0] == "alice" && m[1] == "bob"
		}, 10*time.Second, 100*time.Millisecond, "instance %s agrees on who is here", inst)
	}
	bob.screenshot("cluster")
}
