package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/parley-chat/parley/server/cmd/internal/loadkit"
)

// server is one peer's process, started fresh for each run.
type server struct {
	cmd  *exec.Cmd
	addr string // 127.0.0.1:port
	log  string // its log file
	// workers is set for nginx: its master forks them.
	workers bool
	done    chan error
}

// pids are the server's processes: nginx's master and workers, or parley;
// a server without a command is in this process (the tests').
func (s *server) pids() []int {
	if s.cmd == nil {
		return []int{os.Getpid()}
	}
	if s.workers {
		return family(s.cmd.Process.Pid)
	}
	return []int{s.cmd.Process.Pid}
}

// stop ends the server with SIGTERM (nginx: fast shutdown), then SIGKILL
// after 10 s.
func (s *server) stop() {
	if s.cmd == nil || s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

func (s *server) logTail() string {
	if s.log == "" {
		return ""
	}
	data, _ := os.ReadFile(s.log)
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	return string(data)
}

func (s *server) start(ctx context.Context, dir string) error {
	f, err := os.Create(s.log)
	if err != nil {
		return err
	}
	defer f.Close()
	s.cmd.Stdout, s.cmd.Stderr = f, f
	s.cmd.Dir = dir
	// The server dies with this tool, whatever ends it.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.done = make(chan error, 1)
	go func() { s.done <- s.cmd.Wait() }()
	return nil
}

// startParley runs the parley binary on a free loopback port with the
// memory store and its rate limits lifted, and waits until /healthz answers.
func startParley(ctx context.Context, bin, dir string) (*server, error) {
	s := &server{log: filepath.Join(dir, "parley.log")}
	s.cmd = exec.Command(bin, "-store", "memory", "-addr", "127.0.0.1:0", "-web", dir,
		"-send-rate", "100000", "-max-polls", "50000", "-max-polls-per-addr", "-1", "-max-conns-per-addr", "-1")
	if err := s.start(ctx, dir); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(15 * time.Second)
	for s.addr == "" {
		data, _ := os.ReadFile(s.log)
		for line := range strings.Lines(string(data)) {
			if a, ok := loadkit.ListenAddr(line); ok {
				s.addr = a
			}
		}
		if s.addr != "" {
			break
		}
		if err := s.wait(ctx, deadline); err != nil {
			return nil, fmt.Errorf("parley: %w\n%s", err, s.logTail())
		}
	}
	if err := s.ready(ctx, "/healthz", deadline); err != nil {
		s.stop()
		return nil, fmt.Errorf("parley: %w\n%s", err, s.logTail())
	}
	return s, nil
}

// wait sleeps a little and says why waiting should stop: the server
// exited, the deadline passed or ctx ended.
func (s *server) wait(ctx context.Context, deadline time.Time) error {
	select {
	case err := <-s.done:
		s.done <- err
		return fmt.Errorf("exited at start: %v", err)
	case <-ctx.Done():
		s.stop()
		return ctx.Err()
	case <-time.After(20 * time.Millisecond):
	}
	if time.Now().After(deadline) {
		s.stop()
		return errors.New("did not start in time")
	}
	return nil
}

// ready waits until GET path answers 200 on a fresh connection.
func (s *server) ready(ctx context.Context, path string, deadline time.Time) error {
	req := []byte("GET " + path + " HTTP/1.1\r\nHost: " + s.addr + "\r\nConnection: close\r\n\r\n")
	for {
		c, err := loadkit.DialLoopback(ctx, s.addr)
		if err == nil {
			var resp loadkit.Response
			err = c.Do(ctx, req, &resp)
			c.Close()
			if err == nil && resp.Status == 200 {
				return nil
			}
		}
		if werr := s.wait(ctx, deadline); werr != nil {
			return fmt.Errorf("%w (last: %v)", werr, err)
		}
	}
}

// nchanConf is nginx's whole configuration for the benchmark: everything
// inside the run's temp dir, two workers (one per core here), enough
// connections and files for every client, keep-alive connections that last
// the whole run, a publisher and a long-poll subscriber location.
var nchanConf = template.Must(template.New("nginx.conf").Parse(`# written by parley-peers
worker_processes {{.Workers}};
worker_rlimit_nofile {{.Files}};
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;
load_module {{.Module}};

events {
	worker_connections {{.Conns}};
	multi_accept on;
}

http {
	access_log off;
	client_body_temp_path {{.Dir}}/tmp/body;
	proxy_temp_path {{.Dir}}/tmp/proxy;
	fastcgi_temp_path {{.Dir}}/tmp/fastcgi;
	uwsgi_temp_path {{.Dir}}/tmp/uwsgi;
	scgi_temp_path {{.Dir}}/tmp/scgi;
	keepalive_timeout 300s;
	keepalive_requests 10000000;

	nchan_message_buffer_length {{.Buffer}};
	nchan_message_timeout 10m;

	server {
		listen 127.0.0.1:{{.Port}} backlog=4096;

		location = /pub {
			nchan_publisher;
			nchan_channel_id $arg_id;
		}
		location = /sub {
			nchan_subscriber long-poll;
			nchan_channel_id $arg_id;
			nchan_subscriber_timeout 60s;
		}
		location = /status {
			nchan_stub_status;
		}
	}
}
`))

type nchanParams struct {
	Dir, Module                         string
	Port, Workers, Files, Conns, Buffer int
}

// startNchan writes the configuration and runs nginx in the foreground on a
// free loopback port, then waits until /status answers.
func startNchan(ctx context.Context, nginx, module, dir string, workers, conns int) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	var rl syscall.Rlimit
	files := 65536
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil && rl.Max < uint64(files) {
		files = int(rl.Max)
	}
	p := nchanParams{Dir: dir, Module: module, Port: port, Workers: workers, Files: files,
		Conns: min(files-64, max(conns, 16384)), Buffer: 1000}
	var conf bytes.Buffer
	if err := nchanConf.Execute(&conf, p); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return nil, err
	}
	// nginx started as root runs its workers as nobody.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	s := &server{log: filepath.Join(dir, "nginx.out"), workers: true, addr: "127.0.0.1:" + strconv.Itoa(port)}
	s.cmd = exec.Command(nginx, "-p", dir+"/", "-c", confPath, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
	if err := s.start(ctx, dir); err != nil {
		return nil, err
	}
	if err := s.ready(ctx, "/status", time.Now().Add(15*time.Second)); err != nil {
		errLog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		return nil, fmt.Errorf("nginx: %w\n%s%s", err, s.logTail(), errLog)
	}
	// Wait for the workers to be forked, so that their memory counts.
	for range 100 {
		if len(s.pids()) > workers {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s, nil
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
