// Command parley-load drives a running Parley server the way its clients
// do, and measures it: pollers long-poll each room with their own cursor,
// senders post messages with client_msg_id, and every poller checks that it
// received every acknowledged message exactly once, in order. It starts
// nothing itself and talks to loopback addresses only; bench.sh beside it
// starts a server and runs it.
//
// It measures committed messages per second, send latency (request to 201),
// delivery latency (start of the send to a poller's receipt) and how many
// polls were held at once, and exits 1 if any poller lost a message, saw a
// duplicate, a gap or a reset, or if any request failed.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/parley-chat/parley/shared"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "parley-load:", err)
		os.Exit(1)
	}
}

// config is what the flags say.
type config struct {
	url      string
	rooms    int
	pollers  int // per room
	senders  int // in all, spread over the rooms
	messages int // per sender
	rate     float64
	duration time.Duration
	drain    time.Duration
	wait     int
	perIP    int
	label    string
	row      bool
	cpuprof  string
}

// Bounds that keep a run from becoming a denial of service against the
// machine it runs on.
const (
	maxRooms    = 1000
	maxPollers  = 20000 // in all
	maxSenders  = 5000
	maxMessages = 100000 // per sender
	maxDuration = 30 * time.Minute
)

func parseConfig(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("parley-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.url, "url", "http://127.0.0.1:8080", "Parley server to load (loopback only)")
	fs.IntVar(&c.rooms, "rooms", 1, "rooms to spread the load over")
	fs.IntVar(&c.pollers, "pollers", 100, "long-polling readers per room")
	fs.IntVar(&c.senders, "senders", 10, "sending sessions in all, assigned to rooms in turn")
	fs.IntVar(&c.messages, "messages", 100, "messages each sender sends")
	fs.Float64Var(&c.rate, "rate", 5, "messages per second per sender (the server allows 5/s per session after a burst of 20); 0 sends as fast as answered")
	fs.DurationVar(&c.duration, "duration", 2*time.Minute, "cap on the sending phase")
	fs.DurationVar(&c.drain, "drain", 30*time.Second, "how long pollers may take to receive everything once sending ends")
	fs.IntVar(&c.wait, "wait", shared.DefaultWaitSeconds, "poll wait in seconds")
	fs.IntVar(&c.perIP, "sessions-per-ip", 16, "sender sessions created from each loopback source address (the server allows a burst of 20 per address)")
	fs.StringVar(&c.label, "label", "", "name of this run in the -row output")
	fs.BoolVar(&c.row, "row", false, "print the result as one Markdown table row instead of a report")
	fs.StringVar(&c.cpuprof, "cpuprofile", "", "write this tool's own CPU profile to the file, to see what the load costs the client side")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case c.rooms < 1 || c.rooms > maxRooms:
		return c, fmt.Errorf("-rooms must be 1-%d", maxRooms)
	case c.pollers < 0 || c.pollers*c.rooms > maxPollers:
		return c, fmt.Errorf("-pollers × -rooms must be 0-%d", maxPollers)
	case c.senders < c.rooms || c.senders > maxSenders:
		return c, fmt.Errorf("-senders must be from -rooms (%d, one per room at least) to %d", c.rooms, maxSenders)
	case c.messages < 1 || c.messages > maxMessages:
		return c, fmt.Errorf("-messages must be 1-%d", maxMessages)
	case c.rate < 0:
		return c, errors.New("-rate must not be negative")
	case c.duration <= 0 || c.duration > maxDuration:
		return c, fmt.Errorf("-duration must be positive and at most %v", maxDuration)
	case c.drain <= 0 || c.drain > maxDuration:
		return c, fmt.Errorf("-drain must be positive and at most %v", maxDuration)
	case c.wait < 1 || c.wait > shared.MaxWaitSeconds:
		return c, fmt.Errorf("-wait must be 1-%d", shared.MaxWaitSeconds)
	case c.perIP < 1 || c.perIP > 20:
		return c, errors.New("-sessions-per-ip must be 1-20")
	}
	return c, nil
}

// loopbackTarget refuses any server that is not on this machine: this tool
// is a load generator, and must not be pointed at someone else's service.
func loopbackTarget(ctx context.Context, raw string) (*url.URL, net.IP, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, nil, fmt.Errorf("-url %q is not an http URL", raw)
	}
	ips, err := net.DefaultResolver.LookupIP(ctx, "ip", u.Hostname())
	if err != nil {
		return nil, nil, fmt.Errorf("-url: %w", err)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return nil, nil, fmt.Errorf("-url %q resolves to %v, which is not a loopback address", raw, ip)
		}
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, ips[0], nil
}

// ---- latency histogram ----

// hist counts durations in buckets 2% wide from 1µs up, so quantiles are
// exact to 2% whatever the number of samples, in constant memory.
type hist struct {
	counts [1200]uint64
	n      uint64
	max    time.Duration
}

const histBase = 1.02

func (h *hist) add(d time.Duration) {
	i := 0
	if d > time.Microsecond {
		i = min(len(h.counts)-1, 1+int(math.Log(float64(d)/float64(time.Microsecond))/math.Log(histBase)))
	}
	h.counts[i]++
	h.n++
	h.max = max(h.max, d)
}

func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the upper edge of the bucket holding the q-th sample.
func (h *hist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= max(rank, 1) {
			if i == 0 {
				return time.Microsecond
			}
			return min(h.max, time.Duration(float64(time.Microsecond)*math.Pow(histBase, float64(i))))
		}
	}
	return h.max
}

func (h *hist) String() string {
	return fmt.Sprintf("%s / %s / %s", ms(h.quantile(0.50)), ms(h.quantile(0.95)), ms(h.quantile(0.99)))
}

func ms(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0fms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	}
}

// ---- what the senders were told, per room ----

// roomAcks accumulates the acknowledged messages of one room. The pollers
// compare against it at the end: same count and same checksum of (seq,
// text) means each received exactly the acknowledged set.
type roomAcks struct {
	name   string
	count  atomic.Int64
	sum    atomic.Uint64 // Σ fingerprint(seq, text), wrapping
	maxSeq atomic.Uint64
}

func (a *roomAcks) ack(m shared.Message) {
	a.count.Add(1)
	a.sum.Add(fingerprint(m.Seq, m.Text))
	for {
		cur := a.maxSeq.Load()
		if m.Seq <= cur || a.maxSeq.CompareAndSwap(cur, m.Seq) {
			return
		}
	}
}

func fingerprint(seq uint64, text string) uint64 {
	h := fnv.New64a()
	var b [8]byte
	for i := range b {
		b[i] = byte(seq >> (8 * i))
	}
	_, _ = h.Write(b[:])
	_, _ = h.Write([]byte(text))
	return h.Sum64()
}

// ---- HTTP ----

type apiClient struct {
	base string
	hc   *http.Client
}

// do sends a JSON request and decodes a 2xx answer into out. It returns the
// status, and the Retry-After for 429 and 503.
func (c *apiClient) do(ctx context.Context, method, path, token string, body, out any) (int, time.Duration, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		var retry time.Duration
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			retry = time.Duration(s) * time.Second
		}
		return resp.StatusCode, retry, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, bytes.TrimSpace(data))
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.StatusCode, 0, fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	// Read to the end so the connection can carry the next request.
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, 0, err
	}
	return resp.StatusCode, 0, nil
}

// sleep waits d or until ctx ends, and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// sourceTransport returns a transport whose connections leave from ip. The
// server limits session creation per client address; on loopback every
// 127.0.0.0/8 address is this machine, so spreading the senders over a few
// of them stays within that limit without changing the server.
func sourceTransport(ip net.IP, conns int) *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	if ip != nil {
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	return &http.Transport{
		DialContext:         d.DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
}

// ---- the run ----

type errorLog struct {
	mu   sync.Mutex
	n    int
	some []string
}

func (e *errorLog) add(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.n++
	if len(e.some) < 10 {
		e.some = append(e.some, fmt.Sprintf(format, args...))
	}
}

// pollerStats is one poller's account; only its goroutine writes it until
// the run ends.
type pollerStats struct {
	room                     *roomAcks
	cursor                   atomic.Uint64
	polls, empty             int
	received, ours           int64
	sum                      uint64
	lost, dups, gaps, resets int
	delivery                 hist
}

type loadRun struct {
	cfg    config
	runID  string
	target *url.URL
	errs   errorLog

	inFlight  atomic.Int64 // polls outstanding now
	heldMax   atomic.Int64
	throttled atomic.Int64 // 429s answered to sends
	finals    []atomic.Uint64
	finalsSet atomic.Bool
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, stderr)
	if err != nil {
		return err
	}
	// Polls allocate a response per receipt; collecting less often leaves
	// more of the shared CPU to the server under test, for a few MB more.
	debug.SetGCPercent(400)
	target, ip, err := loopbackTarget(ctx, cfg.url)
	if err != nil {
		return err
	}
	if cfg.cpuprof != "" {
		f, err := os.Create(cfg.cpuprof)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	id := make([]byte, 3)
	_, _ = rand.Read(id)
	lr := &loadRun{cfg: cfg, runID: hex.EncodeToString(id), target: target, finals: make([]atomic.Uint64, cfg.rooms)}

	// Pollers keep one connection each; they all leave from the default
	// address, since polling needs no session.
	pollTr := sourceTransport(nil, cfg.rooms*cfg.pollers+16)
	defer pollTr.CloseIdleConnections()
	pollAPI := &apiClient{base: target.String(), hc: &http.Client{Transport: pollTr, Timeout: time.Duration(cfg.wait)*time.Second + 30*time.Second}}
	if _, _, err := pollAPI.do(ctx, http.MethodGet, "/healthz", "", nil, nil); err != nil {
		return fmt.Errorf("server not reachable: %w", err)
	}

	rooms := make([]*roomAcks, cfg.rooms)
	for i := range rooms {
		rooms[i] = &roomAcks{name: fmt.Sprintf("load-%s-%d", lr.runID, i)}
	}

	senders, closeSenders, err := lr.createSessions(ctx, ip)
	defer closeSenders()
	if err != nil {
		return err
	}

	// Every poller reads its starting cursor before the first send, so it
	// must receive every message that follows.
	pollCtx, stopPolls := context.WithCancel(ctx)
	defer stopPolls()
	stats := make([]*pollerStats, 0, cfg.rooms*cfg.pollers)
	var started, pollWG sync.WaitGroup
	for r := range cfg.rooms {
		for p := range cfg.pollers {
			ps := &pollerStats{room: rooms[r]}
			stats = append(stats, ps)
			started.Add(1)
			pollWG.Go(func() { lr.poll(pollCtx, pollAPI, ps, r, p, &started) })
		}
	}
	started.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}

	sampleCtx, stopSampling := context.WithCancel(ctx)
	var heldSum, heldSamples atomic.Int64
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-sampleCtx.Done():
				return
			case <-t.C:
				n := lr.inFlight.Load()
				heldSum.Add(n)
				heldSamples.Add(1)
			}
		}
	}()

	// Sending phase, capped by -duration.
	sendCtx, stopSending := context.WithTimeout(ctx, cfg.duration)
	defer stopSending()
	sendHists := make([]hist, len(senders))
	start := time.Now()
	var lastAck atomic.Int64
	var sendWG sync.WaitGroup
	for i, s := range senders {
		sendWG.Go(func() { lr.send(sendCtx, s, rooms[i%cfg.rooms], i, start, &sendHists[i], &lastAck) })
	}
	sendWG.Wait()
	capped := sendCtx.Err() != nil && ctx.Err() == nil
	sendEnd := time.Now()
	for i, r := range rooms {
		lr.finals[i].Store(r.maxSeq.Load())
	}
	lr.finalsSet.Store(true)

	// Delivery phase: wait until every poller has reached its room's last
	// acknowledged seq, or -drain passes.
	drainDeadline := time.Now().Add(cfg.drain)
	for ctx.Err() == nil && time.Now().Before(drainDeadline) {
		behind := 0
		for _, ps := range stats {
			if ps.cursor.Load() < ps.room.maxSeq.Load() {
				behind++
			}
		}
		if behind == 0 {
			break
		}
		sleep(ctx, 5*time.Millisecond)
	}
	deliveredEnd := time.Now()
	stopPolls()
	pollWG.Wait()
	stopSampling()
	<-samplerDone
	if ctx.Err() != nil {
		return ctx.Err()
	}

	// Tally.
	var send, delivery hist
	for i := range sendHists {
		send.merge(&sendHists[i])
	}
	var committed int64
	for _, r := range rooms {
		committed += r.count.Load()
	}
	var polls, empty, lost, dups, gaps, resets, mismatched int
	var receipts int64
	for _, ps := range stats {
		delivery.merge(&ps.delivery)
		polls += ps.polls
		empty += ps.empty
		receipts += ps.received
		if c := ps.cursor.Load(); c < ps.room.maxSeq.Load() {
			ps.lost += int(ps.room.maxSeq.Load() - c)
		}
		lost += ps.lost
		dups += ps.dups
		gaps += ps.gaps
		resets += ps.resets
		if ps.ours != ps.room.count.Load() || ps.sum != ps.room.sum.Load() {
			mismatched++
		}
	}
	sendSecs := time.Duration(lastAck.Load()).Seconds()
	var heldMean float64
	if n := heldSamples.Load(); n > 0 {
		heldMean = float64(heldSum.Load()) / float64(n)
	}
	res := result{
		cfg: cfg, committed: committed, sendSecs: sendSecs, offered: cfg.rate * float64(cfg.senders),
		send: &send, delivery: &delivery, throttled: lr.throttled.Load(),
		polls: polls, empty: empty, receipts: receipts, deliverSecs: deliveredEnd.Sub(start).Seconds(),
		heldMax: lr.heldMax.Load(), heldMean: heldMean, lost: lost, dups: dups, gaps: gaps, resets: resets,
		mismatched: mismatched, errors: lr.errs.n, capped: capped, catchUp: deliveredEnd.Sub(sendEnd),
	}
	if cfg.row {
		res.row(stdout)
	} else {
		res.report(stdout)
	}
	for _, e := range lr.errs.some {
		fmt.Fprintln(stderr, "error:", e)
	}
	switch {
	case lost+dups+gaps+resets+mismatched > 0:
		return fmt.Errorf("delivery failed: %d lost, %d duplicates, %d gaps, %d resets, %d pollers with a different set of messages", lost, dups, gaps, resets, mismatched)
	case lr.errs.n > 0:
		return fmt.Errorf("%d requests failed", lr.errs.n)
	case capped:
		return fmt.Errorf("-duration %v ended the sending before every message was sent", cfg.duration)
	}
	return nil
}

// sender is one session, with the transport of its source address.
type sender struct {
	api   *apiClient
	token string
}

// createSessions makes one session per sender, spread over loopback source
// addresses, and returns a function that ends them.
func (lr *loadRun) createSessions(ctx context.Context, ip net.IP) ([]*sender, func(), error) {
	cfg := lr.cfg
	var transports []*http.Transport
	closeAll := func() {}
	out := make([]*sender, cfg.senders)
	for i := range out {
		k := i / cfg.perIP
		if k >= len(transports) {
			var src net.IP
			if ip4 := ip.To4(); ip4 != nil && ip4[0] == 127 {
				// 127.0.0.2, .3, … on IPv4 loopback; 127.0.0.1 is the pollers'.
				src = net.IPv4(127, 0, byte((k+2)>>8), byte((k+2)&0xff))
			} else if k > 0 {
				return nil, closeAll, fmt.Errorf("%d senders need more than one source address, and %v offers only one; use at most %d senders or a 127.x.x.x URL", cfg.senders, ip, cfg.perIP)
			}
			transports = append(transports, sourceTransport(src, cfg.perIP+4))
		}
		out[i] = &sender{api: &apiClient{base: lr.target.String(), hc: &http.Client{Transport: transports[k], Timeout: 30 * time.Second}}}
	}
	closeAll = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		for _, s := range out {
			if s.token != "" {
				wg.Go(func() { _, _, _ = s.api.do(ctx, http.MethodDelete, "/api/session", s.token, nil, nil) })
			}
		}
		wg.Wait()
		for _, t := range transports {
			t.CloseIdleConnections()
		}
	}
	var wg sync.WaitGroup
	errc := make(chan error, len(out))
	for i, s := range out {
		wg.Go(func() {
			name := fmt.Sprintf("load%s-%d", lr.runID, i)
			for attempt := 0; ; attempt++ {
				var sr shared.SessionResponse
				status, retry, err := s.api.do(ctx, http.MethodPost, "/api/session", "", shared.SessionRequest{Name: name}, &sr)
				if err == nil {
					s.token = sr.Token
					return
				}
				if status != http.StatusTooManyRequests || attempt > 30 || !sleep(ctx, max(retry, time.Second)) {
					errc <- fmt.Errorf("create session %s: %w", name, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	return out, closeAll, <-errc
}

// send posts this sender's messages at the configured rate. A send that is
// throttled (429) waits and retries; one that fails is retried a few times
// with the same client_msg_id, which the server turns into one message.
func (lr *loadRun) send(ctx context.Context, s *sender, room *roomAcks, idx int, start time.Time, h *hist, lastAck *atomic.Int64) {
	path := "/api/rooms/" + room.name + "/messages"
	for j := range lr.cfg.messages {
		if lr.cfg.rate > 0 {
			// Senders are spread evenly over each period rather than all
			// sending at its start, as independent people would.
			phase := float64(idx) / float64(lr.cfg.senders)
			due := start.Add(time.Duration((float64(j) + phase) / lr.cfg.rate * float64(time.Second)))
			if !sleep(ctx, time.Until(due)) {
				return
			}
		}
		sentAt := time.Now()
		req := shared.SendRequest{
			Text:        fmt.Sprintf("load %s s%d m%d t=%d", lr.runID, idx, j, sentAt.UnixNano()),
			ClientMsgID: fmt.Sprintf("%s-%d-%d", lr.runID, idx, j),
		}
		failures := 0
		for {
			t0 := time.Now()
			var m shared.Message
			status, retry, err := s.api.do(ctx, http.MethodPost, path, s.token, req, &m)
			if err == nil {
				h.add(time.Since(t0))
				room.ack(m)
				for {
					cur, now := lastAck.Load(), int64(time.Since(start))
					if now <= cur || lastAck.CompareAndSwap(cur, now) {
						break
					}
				}
				break
			}
			if ctx.Err() != nil {
				return
			}
			if status == http.StatusTooManyRequests {
				lr.throttled.Add(1)
				if !sleep(ctx, max(retry, 100*time.Millisecond)) {
					return
				}
				continue
			}
			failures++
			if failures > 3 {
				lr.errs.add("send %s: %v", req.ClientMsgID, err)
				return
			}
			if !sleep(ctx, 100*time.Millisecond) {
				return
			}
		}
	}
}

// poll is one reader: it long-polls its room with its cursor and epoch,
// checking that the seqs it receives follow each other with no hole and no
// repeat.
func (lr *loadRun) poll(ctx context.Context, api *apiClient, ps *pollerStats, room, idx int, started *sync.WaitGroup) {
	path := "/api/rooms/" + ps.room.name + "/messages?"
	var first shared.PollResponse
	if _, _, err := api.do(ctx, http.MethodGet, path+"limit=1", "", nil, &first); err != nil {
		lr.errs.add("poller %d/%d: first poll: %v", room, idx, err)
		started.Done()
		return
	}
	started.Done()
	cursor, epoch := first.Next, first.Epoch
	ps.cursor.Store(cursor)
	for n := 0; ; n++ {
		if lr.finalsSet.Load() && cursor >= lr.finals[room].Load() {
			return
		}
		q := url.Values{}
		q.Set("after", strconv.FormatUint(cursor, 10))
		q.Set("epoch", epoch)
		q.Set("wait", strconv.Itoa(lr.cfg.wait))
		q.Set("limit", strconv.Itoa(shared.MaxLimit))
		// A unique URL per poll, as the browser client sends, so that no
		// cache or request coalescing can answer two polls with one reply.
		q.Set("n", fmt.Sprintf("%d-%d-%d", room, idx, n))
		var pr leanPoll
		if held := lr.inFlight.Add(1); held > lr.heldMax.Load() {
			for {
				cur := lr.heldMax.Load()
				if held <= cur || lr.heldMax.CompareAndSwap(cur, held) {
					break
				}
			}
		}
		_, retry, err := api.do(ctx, http.MethodGet, path+q.Encode(), "", nil, &pr)
		lr.inFlight.Add(-1)
		now := time.Now()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			lr.errs.add("poller %d/%d after=%d: %v", room, idx, cursor, err)
			if !sleep(ctx, max(retry, 100*time.Millisecond)) {
				return
			}
			continue
		}
		ps.polls++
		if pr.Reset {
			// The server lost this room's log (a memory store restarted):
			// a failure of the run; follow the new log rather than spin.
			ps.resets++
			epoch, cursor = pr.Epoch, pr.Next
			ps.cursor.Store(cursor)
			continue
		}
		if pr.Gap {
			ps.gaps++
		}
		if len(pr.Messages) == 0 {
			ps.empty++
		}
		for _, m := range pr.Messages {
			ps.received++
			if m.Seq <= cursor {
				ps.dups++
				continue
			}
			if m.Seq != cursor+1 {
				ps.lost += int(m.Seq - cursor - 1)
			}
			cursor = m.Seq
			if sentNS, ok := lr.ours(m.Text); ok {
				ps.ours++
				ps.sum += fingerprint(m.Seq, m.Text)
				ps.delivery.add(now.Sub(time.Unix(0, sentNS)))
			}
		}
		// Follow next as a client does; a next beyond the last message
		// received skips messages, which is loss.
		switch {
		case pr.Next > cursor:
			ps.lost += int(pr.Next - cursor)
			cursor = pr.Next
		case pr.Next < cursor:
			lr.errs.add("poller %d/%d: next=%d went back from %d", room, idx, pr.Next, cursor)
		}
		ps.cursor.Store(cursor)
	}
}

// leanPoll is the part of shared.PollResponse a poller checks. Decoding
// only this keeps the client's CPU cost per receipt down, which matters
// when client and server share two cores.
type leanPoll struct {
	Epoch    string `json:"epoch"`
	Messages []struct {
		Seq  uint64 `json:"seq"`
		Text string `json:"text"`
	} `json:"messages"`
	Next  uint64 `json:"next"`
	Gap   bool   `json:"gap"`
	Reset bool   `json:"reset"`
}

// ours parses the send time out of this run's message text.
func (lr *loadRun) ours(text string) (int64, bool) {
	rest, ok := strings.CutPrefix(text, "load "+lr.runID+" ")
	if !ok {
		return 0, false
	}
	_, ts, ok := strings.Cut(rest, " t=")
	if !ok {
		return 0, false
	}
	ns, err := strconv.ParseInt(ts, 10, 64)
	return ns, err == nil
}

// ---- output ----

type result struct {
	cfg                                  config
	committed                            int64
	sendSecs, offered, deliverSecs       float64
	send, delivery                       *hist
	throttled                            int64
	polls, empty                         int
	receipts                             int64
	heldMax                              int64
	heldMean                             float64
	lost, dups, gaps, resets, mismatched int
	errors                               int
	capped                               bool
	catchUp                              time.Duration
}

func (r result) rate() float64 {
	if r.sendSecs <= 0 {
		return 0
	}
	return float64(r.committed) / r.sendSecs
}

func (r result) report(w io.Writer) {
	c := r.cfg
	fmt.Fprintf(w, "target      %s: %d room(s) × %d pollers, %d senders × %d messages at %.1f/s each\n",
		c.url, c.rooms, c.pollers, c.senders, c.messages, c.rate)
	fmt.Fprintf(w, "committed   %d messages in %.2fs: %.0f msg/s (offered %.0f msg/s; %d throttled with 429)\n",
		r.committed, r.sendSecs, r.rate(), r.offered, r.throttled)
	fmt.Fprintf(w, "send        p50/p95/p99 %s (max %s)\n", r.send, ms(r.send.max))
	fmt.Fprintf(w, "delivery    p50/p95/p99 %s (max %s) over %d receipts, %.0f/s; last poller done %s after the last send\n",
		r.delivery, ms(r.delivery.max), r.delivery.n, float64(r.receipts)/r.deliverSecs, ms(r.catchUp))
	fmt.Fprintf(w, "polls       %d answered (%d empty); held at once: max %d, mean %.0f\n", r.polls, r.empty, r.heldMax, r.heldMean)
	fmt.Fprintf(w, "correctness %d lost, %d duplicates, %d gaps, %d resets, %d pollers with a different set; %d failed requests\n",
		r.lost, r.dups, r.gaps, r.resets, r.mismatched, r.errors)
}

// row prints one Markdown table row; bench.sh prints the header.
func (r result) row(w io.Writer) {
	c := r.cfg
	verdict := "ok"
	if r.lost+r.dups+r.gaps+r.resets+r.mismatched+r.errors > 0 || r.capped {
		verdict = fmt.Sprintf("FAIL %d lost %d dup %d err", r.lost, r.dups, r.errors)
	}
	fmt.Fprintf(w, "| %s | %d × %d | %d × %d @ %.0f/s | %d | %.0f | %s | %s | %.0f | %d | %s |\n",
		c.label, c.rooms, c.pollers, c.senders, c.messages, c.rate, r.committed, r.rate(),
		r.send, r.delivery, float64(r.receipts)/r.deliverSecs, r.heldMax, verdict)
}
