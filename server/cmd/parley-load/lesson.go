package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/parley-chat/parley/app/lesson"
	"github.com/parley-chat/parley/server/cmd/internal/loadkit"
)

// runLesson is -lesson: the /learn page's comparison at scale. -pollers
// clients of one mode (short polling every -interval, long polling, or the
// textbook's /get_msg/), each the page's own client (package lesson), read
// lobby while one sender posts -messages through /send_msg/ at -rate; the
// textbook's endpoints know no other room. It prints one Markdown row:
// requests and bytes per delivered message, delivery delay from the send's
// acknowledgement, and whether every client got every message exactly once.
func runLesson(ctx context.Context, cfg config, target *url.URL, runID string, stdout, stderr io.Writer) error {
	mode := lesson.Mode(cfg.lesson)
	n := cfg.pollers
	tr := sourceTransport(nil, n+16)
	defer tr.CloseIdleConnections()
	sender := "lesson-" + runID

	boards := make([]*lesson.Board, n)
	locks := make([]sync.Mutex, n)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		boards[i] = lesson.NewBoard(sender)
		jar, _ := cookiejar.New(nil) // one browser per client
		cl := &lesson.Clients{
			Base: target.String(), HTTP: &http.Client{Transport: tr, Jar: jar},
			Name:     fmt.Sprintf("lb%s%d", runID, i),
			Interval: func() time.Duration { return cfg.interval },
			LongWait: cfg.wait,
			Apply: func(f func(*lesson.Board)) {
				locks[i].Lock()
				defer locks[i].Unlock()
				f(boards[i])
			},
		}
		run := map[lesson.Mode]func(context.Context){lesson.Short: cl.RunShort, lesson.Long: cl.RunLong, lesson.Textbook: cl.RunTextbook}[mode]
		wg.Go(func() { run(runCtx) })
	}
	all := func(f func(b *lesson.Board) bool) bool {
		for i, b := range boards {
			locks[i].Lock()
			ok := f(b)
			locks[i].Unlock()
			if !ok {
				return false
			}
		}
		return true
	}
	for !all(func(b *lesson.Board) bool { return b.IsReady(mode) }) {
		if time.Since(start) > cfg.drain || !loadkit.Sleep(ctx, 10*time.Millisecond) {
			return fmt.Errorf("the %d %s clients did not start within %v", n, mode, cfg.drain)
		}
	}

	// One sender, as the page's: every board records each message, then
	// its acknowledgement.
	post := &lesson.Clients{
		Base: target.String(), HTTP: &http.Client{Transport: tr}, Name: sender,
		Apply: func(f func(*lesson.Board)) {
			all(func(b *lesson.Board) bool { f(b); return true })
		},
	}
	sendErrs := 0
	every := time.Duration(float64(time.Second) / cfg.rate)
	for k := 1; k <= cfg.messages; k++ {
		text := fmt.Sprintf("lesson %s #%d", runID, k)
		id := 0
		all(func(b *lesson.Board) bool { id = b.Send(text); return true })
		if err := post.Post(ctx, id, text); err != nil {
			sendErrs++
			fmt.Fprintln(stderr, "send:", err)
		}
		if k < cfg.messages && !loadkit.Sleep(ctx, every) {
			return ctx.Err()
		}
	}
	deadline := time.Now().Add(cfg.drain)
	for !all(func(b *lesson.Board) bool { return b.Columns[mode].Received >= cfg.messages }) {
		if time.Now().After(deadline) || !loadkit.Sleep(ctx, 10*time.Millisecond) {
			break
		}
	}
	stop()
	wg.Wait()
	elapsed := time.Since(start)

	var requests, empty, received, dups, errs int
	var bytes int64
	var delays []time.Duration
	short := 0
	for _, b := range boards {
		c := b.Columns[mode]
		requests += c.Requests
		empty += c.Empty
		received += c.Received
		dups += c.Duplicates
		errs += c.Errors
		bytes += c.Bytes
		delays = append(delays, b.Delays(mode)...)
		if c.Received < cfg.messages {
			short++
		}
	}
	slices.Sort(delays)
	q := func(p float64) string {
		if len(delays) == 0 {
			return "–"
		}
		return ms(delays[min(len(delays)-1, int(p*float64(len(delays))))])
	}
	verdict := "ok"
	if short+dups+errs+sendErrs > 0 {
		verdict = fmt.Sprintf("FAIL %d clients short, %d dup, %d errors, %d sends failed", short, dups, errs, sendErrs)
	}
	label := string(mode)
	if mode == lesson.Short {
		label += fmt.Sprintf(" (%v)", cfg.interval)
	}
	per := func(x float64) float64 { return x / float64(max(received, 1)) }
	fmt.Fprintf(stdout, "| %s | %d | %d × %d @ %.2f/s | %d | %.2f | %.0f | %.0f%% | %s / %s | %.1f | %s |\n",
		label, n, cfg.messages, n, cfg.rate, received, per(float64(requests)), per(float64(bytes)),
		100*float64(empty)/float64(max(requests, 1)), q(0.5), q(0.99), elapsed.Seconds(), verdict)
	if verdict != "ok" {
		return fmt.Errorf("lesson run %s: %s", label, verdict)
	}
	return nil
}
