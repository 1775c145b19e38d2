package main

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-chat/parley/app/api"
	"github.com/parley-chat/parley/server/cmd/internal/loadkit"
	"github.com/parley-chat/parley/shared"
)

// traffic is the soak's clients. Its counters are read by the sampler.
type traffic struct {
	cfg   config
	base  string
	runID string

	sent, received                atomic.Int64
	joins, leaves, abandoned      atomic.Int64
	textbookSent, textbookRead    atomic.Int64
	pollerRuns, probes, throttled atomic.Int64

	mu     sync.Mutex
	nfail  int
	failed []string
}

func newTraffic(c config, base string) *traffic {
	id := make([]byte, 3)
	_, _ = crand.Read(id)
	return &traffic{cfg: c, base: base, runID: hex.EncodeToString(id)}
}

func (t *traffic) fail(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.nfail++
	if len(t.failed) < 10 {
		t.failed = append(t.failed, fmt.Sprintf(format, args...))
	}
}

func (t *traffic) failures() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.nfail == 0 {
		return nil
	}
	return append([]string{fmt.Sprintf("%d client-side failures, the first:", t.nfail)}, t.failed...)
}

func (t *traffic) report(w io.Writer) {
	fmt.Fprintf(w, "traffic: %d messages sent, %d received by pollers over %d poller runs; %d joins, %d leaves, %d sessions left to expire; textbook %d posted, %d read; %d bad requests probed; %d sends throttled\n",
		t.sent.Load(), t.received.Load(), t.pollerRuns.Load(), t.joins.Load(), t.leaves.Load(), t.abandoned.Load(),
		t.textbookSent.Load(), t.textbookRead.Load(), t.probes.Load(), t.throttled.Load())
}

func (t *traffic) room(r *rand.Rand) string { return fmt.Sprintf("soak-%d", r.IntN(t.cfg.rooms)) }

func (t *traffic) client() *api.Client {
	jar, _ := cookiejar.New(nil) // its only error is for options, none given
	return &api.Client{Base: t.base, HTTP: &http.Client{
		Timeout:   time.Duration(shared.MaxWaitSeconds+30) * time.Second,
		Jar:       jar,
		Transport: &http.Transport{MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second},
	}}
}

// run starts every client and returns when ctx ends and all have stopped.
func (t *traffic) run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range t.cfg.chatters {
		wg.Go(func() { t.chatter(ctx, i) })
	}
	for i := range t.cfg.pollers {
		wg.Go(func() { t.poller(ctx, i) })
	}
	for i := range t.cfg.textbook {
		wg.Go(func() { t.textbookClient(ctx, i) })
	}
	wg.Go(func() { t.prober(ctx) })
	wg.Wait()
}

// chatter joins under a new name, sends 10-40 messages about two a second
// to random rooms, then leaves, or three times in ten goes silent so that
// its session expires; and again.
func (t *traffic) chatter(ctx context.Context, i int) {
	r := rand.New(rand.NewPCG(uint64(i), 1))
	for gen := 0; ctx.Err() == nil; gen++ {
		c := t.client()
		name := fmt.Sprintf("soak%s-%d-%d", t.runID, i, gen)
		sr, err := c.Join(ctx, name)
		if err != nil {
			if ctx.Err() == nil {
				t.fail("join %s: %v", name, err)
				loadkit.Sleep(ctx, time.Second)
			}
			continue
		}
		t.joins.Add(1)
		for j := range 10 + r.IntN(31) {
			text := fmt.Sprintf("%s message %d %s", name, j, strings.Repeat("x", r.IntN(200)))
			_, err := c.Send(ctx, sr.Token, t.room(r), shared.SendRequest{Text: text, ClientMsgID: api.NewClientMsgID()})
			switch {
			case err == nil:
				t.sent.Add(1)
			case ctx.Err() != nil:
			case api.Code(err) == shared.CodeRateLimited:
				t.throttled.Add(1)
			default:
				t.fail("send as %s: %v", name, err)
			}
			if !loadkit.Sleep(ctx, time.Duration(300+r.IntN(400))*time.Millisecond) {
				break
			}
		}
		if r.IntN(10) < 3 {
			t.abandoned.Add(1)
		} else if err := c.Leave(context.WithoutCancel(ctx), sr.Token); err != nil {
			t.fail("leave %s: %v", name, err)
		} else {
			t.leaves.Add(1)
		}
		c.HTTP.CloseIdleConnections()
	}
}

// poller follows one room for 10-60 s from its head, checking that every
// answer continues the last one (no gap, reset, duplicate or disorder);
// then it goes, and a new one comes with a new connection.
func (t *traffic) poller(ctx context.Context, i int) {
	r := rand.New(rand.NewPCG(uint64(i), 2))
	for ctx.Err() == nil {
		t.pollerRuns.Add(1)
		c := t.client()
		t.follow(ctx, c, t.room(r), time.Now().Add(time.Duration(10+r.IntN(51))*time.Second))
		c.HTTP.CloseIdleConnections()
	}
}

func (t *traffic) follow(ctx context.Context, c *api.Client, room string, until time.Time) {
	head, err := c.Poll(ctx, "", room, shared.PollRequest{Wait: shared.Ptr(0), Limit: shared.Ptr(1)})
	if err != nil {
		if ctx.Err() == nil {
			t.fail("poll %s head: %v", room, err)
			loadkit.Sleep(ctx, time.Second)
		}
		return
	}
	after, epoch := head.Next, head.Epoch
	for time.Now().Before(until) {
		pr, err := c.Poll(ctx, "", room, shared.PollRequest{After: shared.Ptr(after), Epoch: epoch, Wait: shared.Ptr(5), Limit: shared.Ptr(100)})
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			t.fail("poll %s after %d: %v", room, after, err)
			loadkit.Sleep(ctx, time.Second)
			return
		}
		if pr.Reset || pr.Gap || pr.Epoch != epoch {
			t.fail("poll %s after %d: reset=%v gap=%v epoch %q→%q", room, after, pr.Reset, pr.Gap, epoch, pr.Epoch)
			return
		}
		for _, m := range pr.Messages {
			if m.Seq != after+1 {
				t.fail("poll %s: seq %d after %d", room, m.Seq, after)
				return
			}
			after = m.Seq
		}
		if pr.Next != after {
			t.fail("poll %s: next %d, last seq %d", room, pr.Next, after)
			return
		}
		t.received.Add(int64(len(pr.Messages)))
	}
}

// textbookClient is the textbook's page: /home/ once, then a post every
// 1-3 s while reading with /get_msg/.
func (t *traffic) textbookClient(ctx context.Context, i int) {
	c := t.client()
	defer c.HTTP.CloseIdleConnections()
	name := fmt.Sprintf("tb%s-%d", t.runID, i)
	if err := c.TextbookHome(ctx, "", name); err != nil {
		if ctx.Err() == nil {
			t.fail("textbook home %s: %v", name, err)
		}
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			m, err := c.TextbookGet(ctx, "", name)
			switch {
			case ctx.Err() != nil:
			case err != nil:
				t.fail("textbook get %s: %v", name, err)
				loadkit.Sleep(ctx, time.Second)
			case m.Status:
				t.textbookRead.Add(1)
			}
		}
	})
	r := rand.New(rand.NewPCG(uint64(i), 3))
	for n := 0; loadkit.Sleep(ctx, time.Duration(1000+r.IntN(2000))*time.Millisecond); n++ {
		err := c.TextbookSend(ctx, "", name, fmt.Sprintf("%s post %d", name, n))
		switch {
		case err == nil:
			t.textbookSent.Add(1)
		case ctx.Err() != nil:
		case api.Code(err) == shared.CodeRateLimited:
			t.throttled.Add(1)
		default:
			t.fail("textbook send %s: %v", name, err)
		}
	}
	wg.Wait()
}
