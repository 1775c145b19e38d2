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
//
// Its files follow the phases of a run: config.go (flags and bounds),
// sessions.go (the senders' sessions), send.go (sending and what was
// acknowledged), poll.go (the pollers and their checks), hist.go and
// report.go (latencies and output). It speaks to the server with the app's
// own client, app/api.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/parley-chat/parley/app/api"
	"github.com/parley-chat/parley/server/cmd/internal/loadkit"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "parley-load:", err)
		os.Exit(1)
	}
}

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
	target, ip, err := loadkit.LoopbackTarget(ctx, cfg.url)
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
	pollHTTP := &http.Client{Transport: pollTr, Timeout: time.Duration(cfg.wait)*time.Second + 30*time.Second}
	if err := healthy(ctx, pollHTTP, target.String()); err != nil {
		return fmt.Errorf("server not reachable: %w", err)
	}
	if cfg.lesson != "" {
		return runLesson(ctx, cfg, target, lr.runID, stdout, stderr)
	}
	pollAPI := &api.Client{Base: target.String(), HTTP: pollHTTP}

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
		loadkit.Sleep(ctx, 5*time.Millisecond)
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

// healthy checks that GET /healthz answers 200.
func healthy(ctx context.Context, hc *http.Client, base string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /healthz: %s", resp.Status)
	}
	return nil
}
