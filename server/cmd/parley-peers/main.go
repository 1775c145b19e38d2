// Command parley-peers measures Parley next to Nchan (nginx's long-poll
// module, in C) on the same work, in one run: for each N it starts a fresh
// parley (memory store, rate limits lifted) and a fresh nginx with Nchan,
// each on a free loopback port, parks N long polls on each, one connection
// per client, sends 50 messages 100 ms apart and checks that every client
// got every message once and in order. It reports how long each message
// took to reach all N clients, the server's CPU per delivery, its memory per
// waiting client and, at one N, the deliveries per second under
// back-to-back sends. It prints issue 7's table with the ratios and targets,
// and the raw figures as JSON.
//
// The clients are the same code for both peers (raw HTTP/1.1 on one
// keep-alive connection each, see loadkit.Conn); only the request and the
// parsing of its answer differ. The tool talks to loopback only, stops by
// itself, and kills the servers it started when it ends. It exits 1 if any
// Parley delivery was lost, repeated or out of order; missed targets are
// reported, not failed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/parley-chat/parley/app/api"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if os.Getenv(senderEnv) != "" {
		if err := runSender(ctx, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "parley-peers sender:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "parley-peers:", err)
		os.Exit(1)
	}
}

type config struct {
	parley, nginx, module string
	ns                    []int
	messages              int
	interval              time.Duration
	burstN, burst         int
	burstFor              time.Duration
	drain                 time.Duration
	peers                 []string
	jsonOut               string
	workers               int
	rounds                int
}

const maxClients = 15000

func parseConfig(args []string, stderr io.Writer) (config, error) {
	var c config
	var ns, peers string
	fs := flag.NewFlagSet("parley-peers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.parley, "parley", "bin/parley", "the parley binary to measure")
	fs.StringVar(&c.nginx, "nginx", "nginx", "the nginx binary")
	fs.StringVar(&c.module, "nchan-module", "/usr/lib/nginx/modules/ngx_nchan_module.so", "Nchan's nginx module")
	fs.StringVar(&ns, "n", "1000,5000,10000", "numbers of waiting clients, one run of each peer per number")
	fs.IntVar(&c.messages, "messages", 50, "messages sent in the paced phase")
	fs.DurationVar(&c.interval, "interval", 100*time.Millisecond, "time between the paced phase's sends")
	fs.IntVar(&c.burstN, "burst-n", 1000, "the N whose run ends with back-to-back sends (0: none)")
	fs.IntVar(&c.burst, "burst", 2000, "most messages sent back to back")
	fs.DurationVar(&c.burstFor, "burst-for", 5*time.Second, "longest time spent sending back to back")
	fs.DurationVar(&c.drain, "drain", 60*time.Second, "longest wait for deliveries after a phase's last send")
	fs.StringVar(&peers, "peers", "parley,nchan", "peers to run")
	fs.StringVar(&c.jsonOut, "json", "", "also write the raw figures to this JSON file")
	fs.IntVar(&c.workers, "nginx-workers", runtime.NumCPU(), "nginx worker processes")
	fs.IntVar(&c.rounds, "rounds", 3, "times to run every (N, peer) pair; the table shows the median of the rounds")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	// The servers run in their own temp dirs.
	if strings.Contains(c.parley, "/") {
		abs, err := filepath.Abs(c.parley)
		if err != nil {
			return c, err
		}
		c.parley = abs
	}
	for f := range strings.SplitSeq(ns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > maxClients {
			return c, fmt.Errorf("-n: %q is not a number of clients from 1 to %d", f, maxClients)
		}
		c.ns = append(c.ns, n)
	}
	for f := range strings.SplitSeq(peers, ",") {
		if f != "parley" && f != "nchan" {
			return c, fmt.Errorf("-peers: %q is neither parley nor nchan", f)
		}
		c.peers = append(c.peers, f)
	}
	switch {
	case c.messages < 1 || c.messages > 1000:
		return c, errors.New("-messages must be 1-1000")
	case c.interval < time.Millisecond || c.interval > 10*time.Second:
		return c, errors.New("-interval must be 1ms-10s")
	case c.burst < 0 || c.burst > 100000:
		return c, errors.New("-burst must be 0-100000")
	case c.burstFor < 0 || c.burstFor > 5*time.Minute:
		return c, errors.New("-burst-for must be at most 5m")
	case c.drain < time.Second || c.drain > 10*time.Minute:
		return c, errors.New("-drain must be 1s-10m")
	case c.workers < 1 || c.workers > 64:
		return c, errors.New("-nginx-workers must be 1-64")
	case c.rounds < 1 || c.rounds > 9:
		return c, errors.New("-rounds must be 1-9")
	}
	return c, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, stderr)
	if err != nil {
		return err
	}
	began := time.Now()
	// Ten thousand clients allocate a little per answer; collecting less
	// often leaves more of the shared CPU to the server under test.
	debug.SetGCPercent(400)
	if err := checkFiles(cfg.ns); err != nil {
		return err
	}
	if slices.Contains(cfg.peers, "nchan") {
		if _, err := exec.LookPath(cfg.nginx); err != nil {
			return fmt.Errorf("nginx not found; install it with: apt-get install nginx libnginx-mod-nchan")
		}
		if _, err := os.Stat(cfg.module); err != nil {
			return fmt.Errorf("%s not found; install it with: apt-get install nginx libnginx-mod-nchan", cfg.module)
		}
	}
	tmp, err := os.MkdirTemp("", "parley-peers-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	m := machine(cfg)
	fmt.Fprintln(stdout, m.line())
	logf := func(format string, a ...any) {
		fmt.Fprintf(stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}

	// Each round runs every N; within one, the two peers run back to back,
	// and which goes first alternates from one run to the next, so that
	// neither always runs on a machine the other has just warmed or left
	// busy.
	var results []*result
	turn := 0
	for round := 1; round <= cfg.rounds; round++ {
		for _, n := range cfg.ns {
			order := cfg.peers
			if turn%2 == 1 {
				order = slices.Clone(order)
				slices.Reverse(order)
			}
			turn++
			for _, name := range order {
				pl := plan{clients: n, messages: cfg.messages, interval: cfg.interval, drain: cfg.drain, settle: 10 * time.Second}
				if n == cfg.burstN {
					pl.burst, pl.burstFor = cfg.burst, cfg.burstFor
				}
				dir, err := os.MkdirTemp(tmp, fmt.Sprintf("%s-%d-", name, n))
				if err != nil {
					return err
				}
				res, err := runPeer(ctx, cfg, name, dir, pl, logf)
				if err != nil {
					return err
				}
				res.Round = round
				results = append(results, res)
				_ = os.RemoveAll(dir)
			}
		}
	}

	rep := buildReport(m, results, time.Since(began))
	fmt.Fprintln(stdout)
	rep.table(stdout)
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n```json\n%s\n```\n", data)
	if cfg.jsonOut != "" {
		if err := os.WriteFile(cfg.jsonOut, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "\ntotal run time %s\n", time.Since(began).Round(time.Second))
	var bad []string
	for _, r := range results {
		if r.Peer == "Parley" && r.failed() {
			bad = append(bad, fmt.Sprintf("round %d, N=%d: %d lost, %d duplicates, %d jumps, %d errors (%s)", r.Round, r.Clients, r.Lost+burstLost(r), r.Dups, r.Jumps, r.Errors, r.FirstError))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("parley failed to deliver every message exactly once, in order: %s", strings.Join(bad, "; "))
	}
	return nil
}

// runPeer starts one peer's server in dir, measures the plan against it and
// stops it.
func runPeer(ctx context.Context, cfg config, name, dir string, pl plan, logf func(string, ...any)) (*result, error) {
	run := api.Nonce()[:8]
	room := "peers-" + run
	var (
		s   *server
		p   peer
		err error
	)
	switch name {
	case "parley":
		if s, err = startParley(ctx, cfg.parley, dir); err != nil {
			return nil, err
		}
		defer s.stop()
		// Sending needs a session; the app's own client makes it.
		c := &api.Client{Base: "http://" + s.addr}
		sess, err := c.Join(ctx, "peers-"+run)
		if err != nil {
			return nil, fmt.Errorf("parley: join: %w", err)
		}
		p = &parleyPeer{host: s.addr, room: room, token: sess.Token, run: run}
	case "nchan":
		if s, err = startNchan(ctx, cfg.nginx, cfg.module, dir, cfg.workers, pl.clients+1024); err != nil {
			return nil, err
		}
		defer s.stop()
		p = &nchanPeer{host: s.addr, room: room, run: run}
	}
	logf("%s: N=%d on %s (pids %v)", p.name(), pl.clients, s.addr, s.pids())
	res, err := measure(ctx, s, p, pl, logf)
	if err != nil && ctx.Err() == nil {
		return nil, fmt.Errorf("%w\nserver log:\n%s", err, s.logTail())
	}
	if err != nil {
		return nil, err
	}
	if res.Errors > 0 {
		logf("%s: %d client errors, first: %s", p.name(), res.Errors, res.FirstError)
	}
	return res, nil
}

func burstLost(r *result) int64 {
	if r.Burst == nil {
		return 0
	}
	return r.Burst.Lost
}

// checkFiles makes sure this process may open a socket per client (Go
// raises the soft limit to the hard one by itself).
func checkFiles(ns []int) error {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return err
	}
	need := uint64(slices.Max(ns) + 256)
	if rl.Cur < need {
		return fmt.Errorf("open files limit is %d; %d clients need %d (raise it with ulimit -n)", rl.Cur, slices.Max(ns), need)
	}
	return nil
}

// machineInfo describes where the run happened.
type machineInfo struct {
	CPUs   int    `json:"cpus"`
	CPU    string `json:"cpu"`
	Go     string `json:"go"`
	Nginx  string `json:"nginx,omitempty"`
	Nchan  string `json:"nchan,omitempty"`
	Kernel string `json:"kernel,omitempty"`
	// LoadAvg is /proc/loadavg's 1-minute figure when the run began.
	LoadAvg string `json:"loadavg,omitempty"`
}

func machine(cfg config) machineInfo {
	m := machineInfo{CPUs: runtime.NumCPU(), Go: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(data)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if out, err := exec.Command(cfg.nginx, "-v").CombinedOutput(); err == nil {
		m.Nginx = strings.TrimPrefix(strings.TrimSpace(string(out)), "nginx version: ")
	}
	if out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", "libnginx-mod-nchan").Output(); err == nil {
		m.Nchan = strings.TrimSpace(string(out))
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg, _, _ = strings.Cut(string(data), " ")
	}
	return m
}

func (m machineInfo) line() string {
	s := fmt.Sprintf("machine: %d CPUs, %s, %s", m.CPUs, m.CPU, m.Go)
	if m.Nginx != "" {
		s += ", " + m.Nginx
	}
	if m.Nchan != "" {
		s += ", libnginx-mod-nchan " + m.Nchan
	}
	if m.Kernel != "" {
		s += ", Linux " + m.Kernel
	}
	if m.LoadAvg != "" {
		s += ", load average " + m.LoadAvg + " at the start"
	}
	return s
}

// selfCPU is this process's user+system CPU time in seconds: the load
// generator's own cost, which shares the machine with the server.
func selfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
