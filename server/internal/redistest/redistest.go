// Package redistest runs a real redis-server for tests: on a free loopback
// port, in the test's temp dir, stopped when the test ends. Its tests are
// in the integration tier (package tier), which `make test` always runs;
// there they never skip: without redis-server they fail saying what to
// install, because a skipped Redis test looks like a passing one.
package redistest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parley-chat/parley/server/internal/tier"
)

// Missing is the failure message when redis-server is not installed.
const Missing = "install redis-server (apt-get install redis-server)"

// Options configure a Server. The zero value is Redis without persistence.
type Options struct {
	// AOF turns on the append-only file (appendonly yes).
	AOF bool
	// AppendFsync is appendfsync with AOF: "always", "everysec" or "no";
	// "always" when empty, so that what Redis acknowledged survives a kill.
	AppendFsync string
	// Args are extra redis-server arguments, e.g. "--maxmemory", "10mb".
	Args []string
}

// Server is one redis-server process, which can be stopped and started
// again on the same port and data dir.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	opt  Options

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	out  *lockedWriter // stdout and stderr of the current or last process
}

// Start starts redis-server and registers its stop with t.Cleanup. Tests
// using it are in the integration tier (package tier): without
// PARLEY_INTEGRATION=1 they are skipped; with it they fail, never skip,
// when redis-server is missing.
func Start(t testing.TB, opt Options) *Server {
	t.Helper()
	tier.Require(t, "redis-server")
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal(Missing)
	}
	if opt.AppendFsync == "" {
		opt.AppendFsync = "always"
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), opt: opt}
	t.Cleanup(s.Kill)
	// The free port is found by binding and closing it, so another process
	// can take it before Redis does; a few fresh tries make that harmless.
	for try := 0; ; try++ {
		s.port = freePort(t)
		err := s.start()
		if err == nil {
			return s
		}
		if try == 4 || !strings.Contains(err.Error(), "in use") {
			t.Fatalf("redistest: %v", err)
		}
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: find a free port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	return port
}

func (s *Server) args() []string {
	appendonly := "no"
	if s.opt.AOF {
		appendonly = "yes"
	}
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		// No RDB snapshots: what survives a restart is exactly what the
		// AOF settings keep, which is what the tests are about.
		"--save", "",
		"--appendonly", appendonly,
		"--appendfsync", s.opt.AppendFsync,
		"--daemonize", "no",
		"--logfile", "",
	}
	return append(args, s.opt.Args...)
}

// start runs redis-server and waits until it answers PING.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("redis-server is already running")
	}
	cmd := exec.Command(s.bin, s.args()...)
	cmd.Dir = s.dir
	out := &lockedWriter{w: new(bytes.Buffer)}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	if err := waitReady(s.Addr(), done, 15*time.Second); err != nil {
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("redis-server on %s: %w; its output:\n%s", s.Addr(), err, out.String())
	}
	s.cmd, s.done, s.out = cmd, done, out
	return nil
}

// waitReady polls with PING until Redis answers (loading an AOF answers
// -LOADING, which is not ready), the process exits, or the time is up.
func waitReady(addr string, exited <-chan struct{}, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		err := ping(addr)
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("exited before answering")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %w", within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ping speaks RESP by hand so that waiting for the server needs no client
// with its own retries and pools.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if reply := string(buf[:n]); !strings.HasPrefix(reply, "+PONG") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(reply))
	}
	return nil
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL is the server's redis:// URL, database 0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Dir is the data dir (the AOF lives in its appendonlydir).
func (s *Server) Dir() string { return s.dir }

// Running reports whether the process is up.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Logs returns what the current (or last) process printed.
func (s *Server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.out == nil {
		return ""
	}
	return s.out.String()
}

// Kill stops the server with SIGKILL, as a crash or power cut would (but
// what reached the OS's page cache is kept): nothing is flushed. It does
// nothing when the server is not running.
func (s *Server) Kill() { s.stop(syscall.SIGKILL) }

// Stop shuts the server down with SIGTERM: Redis flushes and fsyncs the AOF
// first (no RDB is written, as --save is off).
func (s *Server) Stop() { s.stop(syscall.SIGTERM) }

func (s *Server) stop(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// Restart starts the server again on the same port and data dir, after a
// Stop or Kill; it fails the test when Redis does not come up.
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("redistest: restart: %v", err)
	}
}

// Client returns a new client for the server, closed at the test's end.
// It does not retry commands, like the clients Parley makes.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// Do runs one command on a fresh connection and returns its reply, failing
// the test on error; e.g. Do("CLIENT", "KILL", "TYPE", "pubsub").
func (s *Server) Do(args ...any) any {
	s.t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := c.Do(ctx, args...).Result()
	if err != nil {
		s.t.Fatalf("redistest: %v: %v", args, err)
	}
	return v
}

// AOFFiles lists the append-only files in the data dir (Redis 7 keeps them
// in appendonlydir), for tests that check persistence is really on.
func (s *Server) AOFFiles() []string {
	files, _ := filepath.Glob(filepath.Join(s.dir, "appendonlydir", "*"))
	return files
}

// lockedWriter lets the process write its output while a test reads it.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}
