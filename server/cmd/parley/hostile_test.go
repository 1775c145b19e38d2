package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parley-chat/parley/app/api"
	"github.com/parley-chat/parley/shared"
)

// hostile is the suite's shared state: the server, the pair's tokens, the
// attackers' clients, and what the attacks were allowed to store.
type hostile struct {
	base, addr string

	mu       sync.Mutex
	tokens   map[string]string       // the pair's, by name
	clients  map[int]*http.Client    // by loopback address
	sessions map[string]bool         // every session name the suite created
	allowed  map[string][]allowedMsg // textbook posts answered OK, by room
}

type allowedMsg struct{ author, text string }

func (h *hostile) token(name string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.tokens[name]
}

// client is the one browser at 127.0.0.n (one cookie jar, kept-alive
// connections), closed at the end so the server's connections can go.
func (h *hostile) client(n int) *http.Client {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c, ok := h.clients[n]; ok {
		return c
	}
	c := from(n)
	h.clients[n] = c
	return c
}

func (h *hostile) sessionNamed(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sessions[name] = true
}

func (h *hostile) allow(room, author, text string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.allowed[room] = append(h.allowed[room], allowedMsg{author, text})
}

// join starts a session from 127.0.0.n and notes its name.
func (h *hostile) join(ctx context.Context, n int, name string) (string, error) {
	c := &api.Client{Base: h.base, HTTP: h.client(n)}
	sr, err := c.Join(ctx, name)
	if err != nil {
		return "", fmt.Errorf("join %s: %w", name, err)
	}
	h.sessionNamed(name)
	return sr.Token, nil
}

// TestHostileClientsWhileAPairChats runs every attack of issue 8 at once
// against one real server (the race-built binary, bolt store, small caps)
// while alice and bob chat through the app's own client. It checks that
// each of them receives every message the other was acknowledged, in
// order, with no gap, duplicate or error; that every attack gets the
// answers docs/api.md promises; that the rooms hold only the pair's
// messages, join and leave events of the suite's own sessions and the
// textbook posts that were answered OK; and that goroutines, held polls and
// resident memory come back down afterwards.
func TestHostileClientsWhileAPairChats(t *testing.T) {
	dir := t.TempDir()
	p := startParley(t, "-store", "bolt", "-data", filepath.Join(dir, "parley.db"), "-web", dir, "-addr", "127.0.0.1:0",
		"-max-polls", strconv.Itoa(hostileMaxPolls), "-max-polls-per-addr", strconv.Itoa(hostileMaxPollsPerAddr),
		"-max-conns-per-addr", strconv.Itoa(hostileMaxConnsPerAddr), "-max-rooms", strconv.Itoa(hostileMaxRooms),
		"-session-rate", "1", "-textbook-rate", "1", "-send-rate", "50", "-read-timeout", hostileReadTimeout.String(),
		"-pprof-addr", "127.0.0.1:0") // for a collection before each heap reading
	h := &hostile{
		base: p.url, addr: strings.TrimPrefix(p.url, "http://"),
		tokens: map[string]string{}, clients: map[int]*http.Client{}, sessions: map[string]bool{}, allowed: map[string][]allowedMsg{},
	}
	defer func() {
		for _, c := range h.clients {
			c.CloseIdleConnections()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()

	alice := newChatter(t, h, 2, "alice")
	bob := newChatter(t, h, 3, "bob")
	// The baseline: the pair present and polling, nothing else yet. The
	// first scrape's own goroutines settle within a few milliseconds.
	time.Sleep(200 * time.Millisecond)
	rss0, err := rssKB(p.cmd.Process.Pid)
	require.NoError(t, err)
	gor0, err := gauge(ctx, p.url, "go_goroutines")
	require.NoError(t, err)
	pprofAddr := asideAddr(t, p, "pprof")
	heap0, err := liveHeap(ctx, p.url, pprofAddr)
	require.NoError(t, err)

	var attacksDone atomic.Bool
	chatCtx, stopChat := context.WithCancel(ctx)
	defer stopChat()
	var pair sync.WaitGroup
	for _, c := range []*chatter{alice, bob} {
		pair.Go(func() { c.poll(chatCtx) })
		pair.Go(func() { c.send(chatCtx, 100, &attacksDone) })
	}

	results := make([][]answer, len(attacks))
	errs := make([]error, len(attacks))
	var wg sync.WaitGroup
	for i, a := range attacks {
		wg.Go(func() { results[i], errs[i] = a.run(ctx, h) })
	}
	wg.Wait()
	attacksDone.Store(true)

	// The pair stops sending once the attacks are over and it sent 100
	// each; each then waits to have read all of the other's.
	alice.sentAll.Wait()
	bob.sentAll.Wait()
	settle(20*time.Second, func() float64 { return 0 }, func(float64) bool { return alice.hasAll(bob) && bob.hasAll(alice) })
	require.True(t, alice.hasAll(bob) && bob.hasAll(alice), "the pair did not receive each other's messages: alice has %d of bob's %d, bob %d of alice's %d",
		alice.countFrom("bob"), bob.acked(), bob.countFrom("alice"), alice.acked())
	stopChat()
	pair.Wait()

	for i, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			require.NoError(t, errs[i])
			checkAnswers(t, a, results[i])
		})
	}
	for _, c := range []*chatter{alice, bob} {
		require.Empty(t, c.problems(), "%s saw errors, gaps or disorder", c.name)
		require.GreaterOrEqual(t, c.acked(), 100)
	}
	other := map[*chatter]*chatter{alice: bob, bob: alice}
	for c, o := range other {
		require.Equal(t, o.sentTexts(), c.textsFrom(o.name), "%s's view of %s's messages", c.name, o.name)
	}
	t.Logf("the pair exchanged %d + %d messages during the attacks", alice.acked(), bob.acked())

	checkRoomLogs(t, h, alice, bob)

	// Bounds. With the pair gone and every attack answered, nothing may be
	// held; the goroutines net/http keeps per connection go as the clients
	// close theirs.
	for _, c := range h.clients {
		c.CloseIdleConnections()
	}
	alice.api.HTTP.CloseIdleConnections()
	bob.api.HTTP.CloseIdleConnections()
	require.Eventually(t, func() bool {
		v, err := gauge(ctx, p.url, "parley_held_polls")
		return err == nil && v == 0
	}, 15*time.Second, 50*time.Millisecond, "held polls did not return to 0")
	// The margin is for goroutines that come and go with any request (the
	// scrape's own connection, the presence loop's ticks, bolt's batch
	// timer); a leak per attack request would be hundreds.
	const gorMargin = 15
	gor1 := settle(10*time.Second, func() float64 {
		v, err := gauge(ctx, p.url, "go_goroutines")
		if err != nil {
			return -1
		}
		return v
	}, func(v float64) bool { return v >= 0 && v <= gor0+gorMargin })
	require.LessOrEqual(t, gor1, gor0+gorMargin, "goroutines: %v before the attacks, %v after", gor0, gor1)

	// The heap in use after a collection, which the race detector does
	// not inflate: the
	// attacks' requests are refused after at most 32 KB of head or the
	// body limit, so once they are answered little of them may stay live.
	// Measured: 2-3 MB more after than before (the pair's room window,
	// two dozen sessions, per-address limiters, pooled buffers). Forty
	// 900 KB heads held, as issue 8 saw (72 MB of RSS), would be 36 MB.
	const heapMargin = 8 << 20
	heap1, err := liveHeap(ctx, p.url, pprofAddr)
	require.NoError(t, err)
	require.LessOrEqual(t, heap1, heap0+heapMargin, "heap in use: %.0f before the attacks, %.0f after", heap0, heap1)

	// RSS, measured: the pair's 200-odd messages and the attacks add
	// 6-15 MB to a plain build (bolt's mapped pages, the heap's high-water
	// mark) and 60-80 MB to a -race build, whose shadow memory grows with
	// every allocation and is not given back; the server returns freed
	// heap once it has been quiet a moment (returnIdleMemory), hence the
	// wait. The margins are about twice the largest; forty 900 KB heads
	// held would exceed the plain one alone. Under -race the live heap
	// above is the sharper check.
	rssMarginKB := int64(24 << 10)
	if raceEnabled() {
		rssMarginKB = 160 << 10
	}
	rss1 := settle(10*time.Second, func() float64 {
		v, err := rssKB(p.cmd.Process.Pid)
		if err != nil {
			return -1
		}
		return float64(v)
	}, func(v float64) bool { return v >= 0 && v <= float64(rss0+rssMarginKB) })
	require.LessOrEqual(t, rss1, float64(rss0+rssMarginKB), "RSS: %d KB before the attacks, %.0f KB after", rss0, rss1)
	t.Logf("goroutines %v before, %v after; heap in use %.1f MB before, %.1f MB after; RSS %d KB before, %.0f KB after (margin %d KB)",
		gor0, gor1, heap0/(1<<20), heap1/(1<<20), rss0, rss1, rssMarginKB)
}

// asideAddr is the address the server logged for its name (pprof,
// metrics) listener.
func asideAddr(t *testing.T, p *proc, name string) string {
	t.Helper()
	for line := range strings.Lines(p.logText()) {
		if strings.Contains(line, `msg="`+name+` listening"`) {
			if _, a, ok := strings.Cut(strings.TrimSpace(line), "addr="); ok {
				return a
			}
		}
	}
	t.Fatalf("no %s address in the log", name)
	return ""
}

// liveHeap has the server collect (pprof's heap profile with gc=1) and
// reads its heap in use from /metrics: what is live, not what garbage
// the last burst left.
func liveHeap(ctx context.Context, base, pprofAddr string) (float64, error) {
	var discard []byte
	if _, err := getRaw(ctx, "http://"+pprofAddr+"/debug/pprof/heap?gc=1", &discard); err != nil {
		return 0, err
	}
	return gauge(ctx, base, "go_memstats_heap_inuse_bytes")
}

// settle reads read until ok holds or timeout passes, and returns the
// last reading.
func settle(timeout time.Duration, read func() float64, ok func(float64) bool) float64 {
	deadline := time.Now().Add(timeout)
	for {
		v := read()
		if ok(v) || time.Now().After(deadline) {
			return v
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkAnswers holds one attack to its documented answers.
func checkAnswers(t *testing.T, a attack, got []answer) {
	t.Helper()
	require.NotEmpty(t, got)
	seen := map[answer]int{}
	for _, g := range got {
		seen[g]++
		if g.status > 0 && g.status < 400 {
			require.Contains(t, a.ok, g.status, "answers %v", got)
			continue
		}
		require.Contains(t, a.want, g, "answers %v", got)
	}
	for _, w := range a.want {
		require.Positive(t, seen[w], "never answered %v; answers %v", w, got)
	}
}

// checkRoomLogs reads every room the suite touched through the API and
// finds only what was allowed in it.
func checkRoomLogs(t *testing.T, h *hostile, pair ...*chatter) {
	t.Helper()
	hc := newClient(t)
	texts := map[string]bool{}
	for _, c := range pair {
		for _, s := range c.sentTexts() {
			texts[c.name+"\x00"+s] = true
		}
	}
	for _, room := range []string{"hostile", "lobby", "tb-flood", "tb-cursor", "idle"} {
		head, status, err := poll(context.Background(), hc, h.base, room, shared.PollRequest{Wait: shared.Ptr(0), Limit: shared.Ptr(1)})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status)
		log := readAll(t, hc, h.base, room, head.Epoch)
		requireDense(t, log)
		allowed := slices.Clone(h.allowed[room])
		var pairTexts int
		for _, m := range log {
			switch {
			case m.Kind == shared.KindJoin || m.Kind == shared.KindLeave:
				require.True(t, h.sessions[m.Author], "room %s: %s of %q, not a session of the suite", room, m.Kind, m.Author)
			case m.Via == shared.ViaTextbook:
				i := slices.Index(allowed, allowedMsg{m.Author, m.Text})
				require.GreaterOrEqual(t, i, 0, "room %s: textbook post %q by %q was never answered OK", room, m.Text, m.Author)
				allowed = slices.Delete(allowed, i, i+1)
			default:
				require.Equal(t, "hostile", room, "room %s: a session's message %q by %q", room, m.Text, m.Author)
				require.True(t, texts[m.Author+"\x00"+m.Text], "room %s: %q by %q is not the pair's", room, m.Text, m.Author)
				pairTexts++
			}
		}
		require.Empty(t, allowed, "room %s: posts answered OK but not stored", room)
		if room == "hostile" {
			require.Equal(t, len(texts), pairTexts, "every acknowledged message of the pair, once")
		}
	}
}
