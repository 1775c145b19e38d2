package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-chat/parley/server/cmd/internal/loadkit"
)

// plan is the work of one run, the same for both peers.
type plan struct {
	clients  int
	messages int           // the paced phase
	interval time.Duration // between its sends
	// burst, when > 0, follows with back-to-back sends: at most this many
	// messages, for at most burstFor.
	burst    int
	burstFor time.Duration
	// drain bounds the wait for deliveries after a phase's last send;
	// settle the wait for the server to go idle before a measurement.
	drain, settle time.Duration
}

// tally is what the clients record per message index k: how many clients
// have it and when the last of them got it.
type tally struct {
	count []atomic.Int32
	last  []atomic.Int64 // unix ns
}

func (t *tally) got(k int, at int64) {
	t.count[k].Add(1)
	for {
		cur := t.last[k].Load()
		if at <= cur || t.last[k].CompareAndSwap(cur, at) {
			return
		}
	}
}

// client is one waiting browser: one connection, one poll at a time.
type client struct {
	conn *loadkit.Conn
	cur  cursor
	next int // index expected next
	// Written only by the client's goroutine, read after it ends.
	dups, skipped, errs int // skipped: answers that jumped over messages
	firstErr            error
}

// runState is one run against one peer.
type runState struct {
	p     peer
	plan  plan
	tally tally
	// outstanding is the polls written and not yet answered, over all
	// clients; answered counts answers.
	outstanding, answered atomic.Int64
	deliveries            atomic.Int64
	lastDelivery          atomic.Int64 // unix ns
}

// result is one run's figures.
type result struct {
	Peer    string `json:"peer"`
	Clients int    `json:"clients"`
	Round   int    `json:"round"`
	// The paced phase.
	Messages        int       `json:"messages"`
	TimeToAllMS     []float64 `json:"time_to_all_ms"` // per message; -1 when some client never got it
	TimeToAllMedian float64   `json:"time_to_all_median_ms"`
	TimeToAllP90    float64   `json:"time_to_all_p90_ms"`
	Deliveries      int64     `json:"deliveries"`
	Answers         int64     `json:"answers"` // polls answered in the paced phase (fewer than deliveries when answers carry several messages)
	ServerTicks     uint64    `json:"server_cpu_ticks"`
	// ServerSysTicks is the part of ServerTicks spent in the kernel.
	ServerSysTicks  uint64  `json:"server_sys_ticks"`
	CPUPerDeliveryU float64 `json:"server_cpu_per_delivery_us"`
	PhaseSeconds    float64 `json:"paced_phase_seconds"`
	// SendLagMaxMS is how far behind its schedule the latest send began: a
	// server slow to answer sends pushes the following ones back.
	SendLagMaxMS float64 `json:"send_lag_max_ms"`
	Lost         int64   `json:"lost"`
	Dups         int     `json:"duplicates"`  // a message again, or one older than the last
	Jumps        int     `json:"index_jumps"` // answers that skipped messages (lost, or later out of order)
	Errors       int     `json:"errors"`
	FirstError   string  `json:"first_error,omitempty"`
	// Memory.
	RSSBeforeBytes  int64   `json:"rss_before_bytes"`
	RSSParkedBytes  int64   `json:"rss_parked_bytes"`
	RSSPerWaiterKB  float64 `json:"rss_per_waiter_kb"`
	ServerProcesses int     `json:"server_processes"`
	// CPU seconds during the paced phase: this tool's, and that of every
	// other process on the machine (neither server nor this tool).
	ClientCPUSeconds float64 `json:"client_cpu_seconds"`
	OtherCPUSeconds  float64 `json:"other_cpu_seconds"`
	// The back-to-back phase, when run.
	Burst *burstResult `json:"burst,omitempty"`
}

type burstResult struct {
	Sent          int     `json:"sent"`
	SendSeconds   float64 `json:"send_seconds"`
	Deliveries    int64   `json:"deliveries"`
	Seconds       float64 `json:"seconds"` // first send to last delivery
	PerSecond     float64 `json:"deliveries_per_second"`
	Lost          int64   `json:"lost"`           // (client, message) pairs never delivered
	LostPercent   float64 `json:"lost_percent"`   // of clients × sent
	MessagesShort int     `json:"messages_short"` // messages some client never got
	// From each send's request to its answer: how long the server kept
	// the sender, who sends again only then.
	SendP50MS float64 `json:"send_p50_ms"`
	SendP90MS float64 `json:"send_p90_ms"`
}

// failed reports whether any delivery was lost, repeated or out of order.
func (r *result) failed() bool {
	lost := r.Lost
	if r.Burst != nil {
		lost += r.Burst.Lost
	}
	return lost > 0 || r.Dups > 0 || r.Jumps > 0 || r.Errors > 0
}

// measure runs the plan against a started server s.
func measure(ctx context.Context, s *server, p peer, pl plan, logf func(string, ...any)) (*result, error) {
	total := 1 + pl.messages + pl.burst // index 0 is the warm-up
	rs := &runState{p: p, plan: pl, tally: tally{count: make([]atomic.Int32, total), last: make([]atomic.Int64, total)}}
	res := &result{Peer: p.name(), Clients: pl.clients, Messages: pl.messages}

	pids := s.pids()
	res.ServerProcesses = len(pids)
	quiesce(ctx, pids, pl.settle)
	var err error
	if res.RSSBeforeBytes, err = rssBytes(pids); err != nil {
		return nil, err
	}

	sender, err := startSender(ctx, p.spec())
	if err != nil {
		return nil, err
	}
	defer sender.close()

	// Connect the clients one after the other, each starting its poll loop
	// as soon as it is connected. Closing a connection ends its client's
	// wait for an answer, so the clients end when their connections close.
	runCtx, stop := context.WithCancel(ctx)
	clients := make([]*client, 0, pl.clients)
	var wg sync.WaitGroup
	stopClients := func() {
		stop()
		for _, c := range clients {
			c.conn.Close()
		}
		wg.Wait()
	}
	defer stopClients()
	for i := range pl.clients {
		conn, err := loadkit.DialLoopback(runCtx, s.addr)
		if err != nil {
			// One retry: a burst of connects can overflow the accept queue.
			time.Sleep(200 * time.Millisecond)
			if conn, err = loadkit.DialLoopback(runCtx, s.addr); err != nil {
				return nil, fmt.Errorf("connecting client %d: %w", i, err)
			}
		}
		c := &client{conn: conn}
		clients = append(clients, c)
		wg.Go(func() { rs.loop(runCtx, c) })
	}
	logf("%s: %d clients connected", p.name(), pl.clients)

	// Warm-up: message 0 reaches everyone, which proves each connection
	// works and gives each its cursor; then every client parks a poll.
	if err := rs.until(ctx, 60*time.Second, func() bool { return rs.outstanding.Load() >= int64(pl.clients) }); err != nil {
		return nil, fmt.Errorf("%s: waiting for the first polls: %w", p.name(), err)
	}
	if _, err := sender.send(0); err != nil {
		return nil, err
	}
	if err := rs.until(ctx, 60*time.Second, func() bool {
		return rs.tally.count[0].Load() >= int32(pl.clients) && rs.outstanding.Load() >= int64(pl.clients)
	}); err != nil {
		return nil, fmt.Errorf("%s: warm-up message: %d of %d clients have it: %w", p.name(), rs.tally.count[0].Load(), pl.clients, err)
	}
	quiesce(ctx, pids, pl.settle)
	if res.RSSParkedBytes, err = rssBytes(pids); err != nil {
		return nil, err
	}
	res.RSSPerWaiterKB = float64(res.RSSParkedBytes-res.RSSBeforeBytes) / 1024 / float64(pl.clients)
	logf("%s: %d polls parked; RSS %.1f MB before, %.1f MB now", p.name(), pl.clients,
		float64(res.RSSBeforeBytes)/(1<<20), float64(res.RSSParkedBytes)/(1<<20))

	// The paced phase: messages 1..m, one every interval.
	ticks0, err := cpuTicks(pids)
	if err != nil {
		return nil, err
	}
	sys0, err := sysTicks(pids)
	if err != nil {
		return nil, err
	}
	self0, machine0, answers0 := selfCPU(), machineTicks(), rs.answered.Load()
	start := time.Now()
	// Time to all counts from when each message was due, not from when its
	// send began: a server that answers sends slowly delays the sends after
	// it, and measuring from their late start would hide that delay (the
	// "coordinated omission" of closed-loop load tools).
	due := make([]time.Time, pl.messages+1)
	for k := 1; k <= pl.messages; k++ {
		due[k] = start.Add(time.Duration(k-1) * pl.interval)
		if !loadkit.Sleep(ctx, time.Until(due[k])) {
			return nil, ctx.Err()
		}
		began, err := sender.send(k)
		if err != nil {
			return nil, err
		}
		res.SendLagMaxMS = max(res.SendLagMaxMS, float64(began.Sub(due[k]).Microseconds())/1e3)
	}
	all := func(from, to int) func() bool {
		return func() bool {
			for k := from; k <= to; k++ {
				if rs.tally.count[k].Load() < int32(pl.clients) {
					return false
				}
			}
			return true
		}
	}
	_ = rs.untilStalled(ctx, pl.drain, all(1, pl.messages))
	ticks1, err := cpuTicks(pids)
	if err != nil {
		return nil, err
	}
	sys1, err := sysTicks(pids)
	if err != nil {
		return nil, err
	}
	res.ServerSysTicks = sys1 - sys0
	self1, machine1 := selfCPU(), machineTicks()
	res.Answers = rs.answered.Load() - answers0
	res.PhaseSeconds = time.Since(start).Seconds()
	res.ServerTicks = ticks1 - ticks0
	res.ClientCPUSeconds = self1 - self0
	res.OtherCPUSeconds = max(0, float64(machine1-machine0)/ticksPerSecond-float64(res.ServerTicks)/ticksPerSecond-res.ClientCPUSeconds)
	var done []float64
	for k := 1; k <= pl.messages; k++ {
		d := float64(rs.tally.last[k].Load()-due[k].UnixNano()) / 1e6
		n := rs.tally.count[k].Load()
		res.Deliveries += int64(n)
		res.Lost += int64(pl.clients) - int64(n)
		if n < int32(pl.clients) {
			d = -1
		} else {
			done = append(done, d)
		}
		res.TimeToAllMS = append(res.TimeToAllMS, d)
	}
	res.TimeToAllMedian, res.TimeToAllP90 = quantile(done, 0.5), quantile(done, 0.9)
	if res.Deliveries > 0 {
		res.CPUPerDeliveryU = float64(res.ServerTicks) / ticksPerSecond / float64(res.Deliveries) * 1e6
	}
	logf("%s: paced phase: time to all median %.1f ms, p90 %.1f ms; %d lost; latest send %.0f ms behind schedule; CPU s: server %.2f for %d deliveries in %d answers, load tool %.2f, other processes %.2f, in %.1f s",
		p.name(), res.TimeToAllMedian, res.TimeToAllP90, res.Lost, res.SendLagMaxMS, float64(res.ServerTicks)/ticksPerSecond, res.Deliveries, res.Answers,
		res.ClientCPUSeconds, res.OtherCPUSeconds, res.PhaseSeconds)

	if pl.burst > 0 {
		quiesce(ctx, pids, pl.settle)
		b := &burstResult{}
		first := 1 + pl.messages
		before := rs.deliveries.Load()
		bStart, took, err := sender.burst(first, total-first, pl.burstFor)
		if err != nil {
			return nil, err
		}
		b.Sent = len(took)
		b.SendSeconds = time.Since(bStart).Seconds()
		b.SendP50MS, b.SendP90MS = quantile(took, 0.5), quantile(took, 0.9)
		_ = rs.untilStalled(ctx, pl.drain, all(first, first+b.Sent-1))
		b.Deliveries = rs.deliveries.Load() - before
		b.Seconds = max(0, time.Duration(rs.lastDelivery.Load()-bStart.UnixNano()).Seconds())
		if b.Seconds > 0 {
			b.PerSecond = float64(b.Deliveries) / b.Seconds
		}
		for k := first; k < first+b.Sent; k++ {
			if n := rs.tally.count[k].Load(); n < int32(pl.clients) {
				b.Lost += int64(pl.clients) - int64(n)
				b.MessagesShort++
			}
		}
		b.LostPercent = 100 * float64(b.Lost) / float64(b.Sent*pl.clients)
		res.Burst = b
		logf("%s: back-to-back: %d messages in %.1fs (each send answered in %.1f ms at p50, %.1f at p90), %.0f deliveries/s, %d lost (%.1f %%)",
			p.name(), b.Sent, b.SendSeconds, b.SendP50MS, b.SendP90MS, b.PerSecond, b.Lost, b.LostPercent)
	}

	stopClients()
	for _, c := range clients {
		res.Dups += c.dups
		res.Jumps += c.skipped
		res.Errors += c.errs
		if c.firstErr != nil && res.FirstError == "" {
			res.FirstError = c.firstErr.Error()
		}
	}
	return res, nil
}

// loop is one client: poll, read, record, poll again at once, until ctx ends.
func (rs *runState) loop(ctx context.Context, c *client) {
	var req []byte
	var resp loadkit.Response
	got := func(k int) {
		switch {
		case k < c.next:
			c.dups++
			return
		case k > c.next:
			c.skipped++ // some messages never came, or came out of order
		}
		c.next = k + 1
		now := time.Now().UnixNano()
		if k < len(rs.tally.count) {
			rs.tally.got(k, now)
		}
		rs.deliveries.Add(1)
		for {
			cur := rs.lastDelivery.Load()
			if now <= cur || rs.lastDelivery.CompareAndSwap(cur, now) {
				break
			}
		}
	}
	for ctx.Err() == nil {
		req = rs.p.pollRequest(req[:0], &c.cur)
		if err := c.conn.Write(ctx, req); err != nil {
			c.fail(ctx, err)
			continue
		}
		rs.outstanding.Add(1)
		err := c.conn.Read(&resp)
		rs.outstanding.Add(-1)
		if err == nil {
			rs.answered.Add(1)
			err = rs.p.readPoll(&resp, &c.cur, got)
		}
		if err != nil {
			c.fail(ctx, err)
		}
	}
}

// fail counts an error that did not come from the run ending, and backs off.
func (c *client) fail(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	c.errs++
	if c.firstErr == nil {
		c.firstErr = err
	}
	loadkit.Sleep(ctx, 100*time.Millisecond)
}

var errTimeout = errors.New("timed out")

// until polls cond every 2 ms for at most d.
func (rs *runState) until(ctx context.Context, d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return errTimeout
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

// untilStalled waits for cond, giving up when no delivery has happened for
// 3 s or after d: a peer that lost messages never completes.
func (rs *runState) untilStalled(ctx context.Context, d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		idle := time.Since(time.Unix(0, rs.lastDelivery.Load()))
		if time.Now().After(deadline) || idle > 3*time.Second {
			return errTimeout
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

// quiesce waits until the server's processes have used at most one tick of
// CPU over 300 ms (for at most d), so that what it measures next starts from
// a server at rest.
func quiesce(ctx context.Context, pids []int, d time.Duration) {
	prev, _ := cpuTicks(pids)
	deadline := time.Now().Add(d)
	quiet := 0
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(300 * time.Millisecond)
		now, _ := cpuTicks(pids)
		if now-prev <= 1 {
			quiet++
		} else {
			quiet = 0
		}
		if quiet == quietWindows {
			return
		}
		prev = now
	}
}

// quietWindows is how many 300 ms windows in a row a server must stay idle
// before a measurement: a second, so that what a server does once a burst is
// over (Parley returns the burst's garbage to the system after 250-500 ms of
// quiet; nginx does nothing) is done before its RSS is read, for both
// peers alike. One window used to be enough to read Parley before its
// return, or after it, by chance.
const quietWindows = 3

// quantile is the nearest-rank q-quantile of xs (which it sorts), 0 when empty.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	i := int(q*float64(len(xs))+0.999999) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}
