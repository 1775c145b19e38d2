// Command parley-soak runs the parley binary for a long while under mixed
// traffic and checks that it stays flat: resident memory, goroutines, open
// file descriptors and the bolt file must not keep growing at the end of
// the run. It starts the server itself (bolt store in a temp dir, loopback
// only) because it reads the process's /proc entries and its data file.
//
// The traffic (traffic.go): chatters join, send to a few rooms and then
// leave or go silent until their session expires; pollers follow a room for
// a while and go, checking every answer for gaps, duplicates and order;
// textbook clients post and read through /send_msg/ and /get_msg/; a prober
// sends bad requests and checks their codes. The sampler (sample.go) writes
// a CSV row every -sample; at the end the last third of the run is fitted
// with a line, and any quantity whose fitted growth over that third exceeds
// its tolerance fails the run.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/parley-chat/parley/server/cmd/internal/loadkit"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "parley-soak:", err)
		os.Exit(1)
	}
}

type config struct {
	parley     string
	duration   time.Duration
	sample     time.Duration
	dir        string
	serverArgs string
	chatters   int
	pollers    int
	textbook   int
	rooms      int
}

func parseConfig(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("parley-soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.parley, "parley", "bin/parley", "the parley binary to run")
	fs.DurationVar(&c.duration, "duration", 30*time.Minute, "how long the traffic runs")
	fs.DurationVar(&c.sample, "sample", 0, "time between samples; 0: duration/180, between 1s and 10s")
	fs.StringVar(&c.dir, "dir", "", "directory for the bolt file, the server's log and samples.csv; empty: a new temp dir (kept)")
	fs.StringVar(&c.serverArgs, "server-args", "", "extra flags for parley, space-separated; they override the soak's own (e.g. -retain-messages 2000)")
	fs.IntVar(&c.chatters, "chatters", 6, "chatters at once (each joins, sends, then leaves or goes silent)")
	fs.IntVar(&c.pollers, "pollers", 12, "pollers at once (each follows a room for 10-60 s)")
	fs.IntVar(&c.textbook, "textbook", 2, "textbook clients (/send_msg/, /get_msg/)")
	fs.IntVar(&c.rooms, "rooms", 4, "rooms the traffic spreads over")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.duration < 10*time.Second {
		return c, errors.New("-duration must be at least 10s: the last third is judged")
	}
	if c.sample == 0 {
		c.sample = min(max(c.duration/180, time.Second), 10*time.Second)
	}
	if c.chatters < 1 || c.pollers < 1 || c.rooms < 1 || c.textbook < 0 {
		return c, errors.New("-chatters, -pollers and -rooms must be at least 1, -textbook at least 0")
	}
	return c, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseConfig(args, stderr)
	if err != nil {
		return err
	}
	if c.dir == "" {
		if c.dir, err = os.MkdirTemp("", "parley-soak-"); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "parley-soak: %s of traffic, a sample every %s, files in %s\n", c.duration, c.sample, c.dir)
	srv, err := startServer(ctx, c)
	if err != nil {
		return err
	}
	defer srv.stop()

	t := newTraffic(c, srv.base)
	trafficCtx, stopTraffic := context.WithCancel(ctx)
	trafficDone := make(chan struct{})
	go func() {
		defer close(trafficDone)
		t.run(trafficCtx)
	}()
	defer metricsClient.CloseIdleConnections()
	samples, sampleErr := sampleUntil(ctx, c, srv, t, time.Now().Add(c.duration), stdout)
	stopTraffic()
	<-trafficDone
	if sampleErr != nil {
		return sampleErr
	}
	failures := judge(samples, stdout)
	if ctx.Err() != nil {
		// Interrupted: what was sampled is reported above, but a run cut
		// short is no verdict.
		return fmt.Errorf("interrupted after %s", samples[len(samples)-1].at.Truncate(time.Second))
	}
	failures = append(failures, t.failures()...)
	t.report(stdout)
	fmt.Fprintf(stdout, "samples: %s\n", filepath.Join(c.dir, "samples.csv"))
	if len(failures) > 0 {
		return fmt.Errorf("%d checks failed:\n  %s", len(failures), strings.Join(failures, "\n  "))
	}
	fmt.Fprintln(stdout, "flat: every check held")
	return nil
}

// server is the parley process under soak.
type server struct {
	cmd    *exec.Cmd
	base   string
	data   string
	exited chan struct{}
}

func startServer(ctx context.Context, c config) (*server, error) {
	data := filepath.Join(c.dir, "parley.db")
	web := filepath.Join(c.dir, "web")
	if err := os.MkdirAll(web, 0o755); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(c.dir, "parley.log"))
	if err != nil {
		return nil, err
	}
	// Limits raised where the soak's clients share one address and would
	// otherwise be throttled by design; the session TTL is short so that
	// silent sessions expire many times within a run; rooms keep 500
	// messages in the store, so that retention reaches its bound within
	// minutes and the file can level off (at the default of 100,000 a
	// room, it would grow through any run of less than days).
	args := []string{"-addr", "127.0.0.1:0", "-store", "bolt", "-data", data, "-web", web,
		"-session-ttl", "5s", "-session-rate", "50", "-textbook-rate", "50", "-send-rate", "20", "-retain-messages", "500"}
	args = append(args, strings.Fields(c.serverArgs)...)
	cmd := exec.Command(c.parley, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		_ = logFile.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start %s: %w", c.parley, err)
	}
	s := &server{cmd: cmd, data: data, exited: make(chan struct{})}
	addr := make(chan string, 1)
	var once sync.Once
	go func() {
		defer close(s.exited)
		defer logFile.Close()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			_, _ = fmt.Fprintln(logFile, line)
			if a, ok := loadkit.ListenAddr(line); ok {
				once.Do(func() { addr <- a })
			}
		}
		_, _ = io.Copy(logFile, stderr)
		_ = cmd.Wait()
	}()
	select {
	case a := <-addr:
		s.base = "http://" + a
	case <-s.exited:
		return nil, fmt.Errorf("parley exited before listening; see %s", filepath.Join(c.dir, "parley.log"))
	case <-time.After(30 * time.Second):
		s.stop()
		return nil, errors.New("parley did not log its address within 30s")
	case <-ctx.Done():
		s.stop()
		return nil, ctx.Err()
	}
	return s, nil
}

// stop ends the server with SIGTERM, as an operator would, and SIGKILL if
// it has not exited after 20 s.
func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// metricsClient reads /metrics; its own transport, so the traffic's
// connections do not change what it measures.
var metricsClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
