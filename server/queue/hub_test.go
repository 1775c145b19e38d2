package queue_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/parley-chat/parley/server/memstore"
	"github.com/parley-chat/parley/server/queue"
	"github.com/parley-chat/parley/shared"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newHub(t testing.TB, store queue.Store, opt queue.Options) *queue.Hub {
	h := queue.New(store, opt)
	t.Cleanup(h.Close)
	return h
}

func send(t testing.TB, h *queue.Hub, room, text string) shared.Message {
	m, dup, err := h.Append(context.Background(), shared.Message{Room: room, Kind: shared.KindText, Author: "t", Text: text})
	require.NoError(t, err)
	require.False(t, dup)
	return m
}

func seqs(msgs []shared.Message) []uint64 {
	out := make([]uint64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Seq
	}
	return out
}

func span(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func after(n uint64) *uint64 { return &n }

func TestLatestAndAfterAreOrderedAndDense(t *testing.T) {
	h := newHub(t, memstore.New(0), queue.Options{History: 100})
	ctx := context.Background()
	for i := range 10 {
		m := send(t, h, "lobby", fmt.Sprint("m", i))
		require.EqualValues(t, i+1, m.Seq)
		require.False(t, m.SentAt.IsZero())
	}
	latest, err := h.Read(ctx, "lobby", queue.Query{Limit: 4})
	require.NoError(t, err)
	require.Equal(t, span(7, 10), seqs(latest.Messages), "latest page is the newest, oldest first")
	require.EqualValues(t, 10, latest.Next)
	require.NotEmpty(t, latest.Epoch)

	batch, err := h.Read(ctx, "lobby", queue.Query{After: after(3), Epoch: latest.Epoch, Limit: 5})
	require.NoError(t, err)
	require.Equal(t, span(4, 8), seqs(batch.Messages), "a batch is bounded by limit")
	require.EqualValues(t, 8, batch.Next)
	require.False(t, batch.Gap)
	require.False(t, batch.Reset)
	require.Equal(t, "m3", batch.Messages[0].Text)
}

func TestEmptyRoom(t *testing.T) {
	h := newHub(t, memstore.New(0), queue.Options{})
	resp, err := h.Read(context.Background(), "new", queue.Query{})
	require.NoError(t, err)
	require.Empty(t, resp.Messages)
	require.NotNil(t, resp.Messages, "an empty batch is [] on the wire, not null")
	require.Zero(t, resp.Next)
	short, err := h.Read(context.Background(), "new", queue.Query{After: after(0), Epoch: resp.Epoch})
	require.NoError(t, err)
	require.Empty(t, short.Messages, "wait 0 is a short poll")
	require.False(t, short.Reset)
}

func TestWaiterWakesOnPublish(t *testing.T) {
	h := newHub(t, memstore.New(0), queue.Options{})
	ctx := context.Background()
	first, err := h.Read(ctx, "r", queue.Query{})
	require.NoError(t, err)
	got := make(chan *queue.Page, 1)
	go func() {
		resp, err := h.Read(ctx, "r", queue.Query{After: after(0), Epoch: first.Epoch, Wait: time.Minute})
		if err != nil {
			t.Error(err)
		}
		got <- resp
	}()
	// The waiter may or may not be parked yet; either way it must see the
	// message, which is the point of reading under the room's lock.
	send(t, h, "r", "hello")
	select {
	case resp := <-got:
		require.Equal(t, []uint64{1}, seqs(resp.Messages))
		require.EqualValues(t, 1, resp.Next)
	case <-time.After(10 * time.Second):
		t.Fatal("waiter was not woken")
	}
}

func TestWaitTimesOutEmptyWithSameCursor(t *testing.T) {
	h := newHub(t, memstore.New(0), queue.Options{})
	send(t, h, "r", "x")
	resp, err := h.Read(context.Background(), "r", queue.Query{After: after(1), Wait: 20 * time.Millisecond})
	require.NoError(t, err)
	require.Empty(t, resp.Messages)
	require.EqualValues(t, 1, resp.Next)
}

func TestCancelledWaiterReturns(t *testing.T) {
	h := newHub(t, memstore.New(0), queue.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := h.Read(ctx, "r", queue.Query{After: after(0), Wait: time.Hour})
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("cancelled waiter still held")
	}
}

func TestDrainAnswersHeldPollsAndLaterOnesAtOnce(t *testing.T) {
	h := queue.New(memstore.New(0), queue.Options{})
	defer h.Close()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			resp, err := h.Read(context.Background(), "r", queue.Query{After: after(0), Wait: time.Hour})
			if err != nil || len(resp.Messages) != 0 {
				t.Errorf("drained poll: %v %v", resp, err)
			}
		})
	}
	h.Drain()
	wg.Wait()
	resp, err := h.Read(context.Background(), "r", queue.Query{After: after(0), Wait: time.Hour})
	require.NoError(t, err)
	require.Empty(t, resp.Messages)
	// Sends still work while draining, so in-flight requests finish.
	send(t, h, "r", "late")
}

func TestAppendAfterCloseFails(t *testing.T) {
	h := queue.New(memstore.New(0), queue.Options{})
	h.Close()
	h.Close() // idempotent
	_, _, err := h.Append(context.Background(), shared.Message{Room: "r", Kind: shared.KindText, Author: "a", Text: "x"})
	require.ErrorIs(t, err, queue.ErrClosed)
}

func TestEpochMismatchAndCursorBeyondEndReset(t *testing.T) {
	h := newHub(t, memstore.New(0), queue.Options{})
	for i := range 5 {
		send(t, h, "r", fmt.Sprint(i))
	}
	ctx := context.Background()
	for name, q := range map[string]queue.Query{
		"wrong epoch":   {After: after(2), Epoch: "old-epoch", Limit: 3, Wait: time.Hour},
		"beyond end":    {After: after(99), Limit: 3, Wait: time.Hour},
		"beyond, epoch": {After: after(6), Limit: 3, Wait: time.Hour},
	} {
		resp, err := h.Read(ctx, "r", q)
		require.NoError(t, err, name)
		require.True(t, resp.Reset, name)
		require.Equal(t, span(3, 5), seqs(resp.Messages), "%s: reset answers at once with the latest", name)
		require.EqualValues(t, 5, resp.Next, name)
	}
}

func TestCatchUpFromStoreBelowWindow(t *testing.T) {
	h := newHub(t, memstore.New(0), queue.Options{History: 10})
	for i := range 50 {
		send(t, h, "r", fmt.Sprint(i))
	}
	resp, err := h.Read(context.Background(), "r", queue.Query{After: after(5), Limit: 20})
	require.NoError(t, err)
	require.Equal(t, span(6, 25), seqs(resp.Messages), "older than the window comes from the store, without a gap")
	require.False(t, resp.Gap)
}

func TestGapWhenStoreNoLongerRetains(t *testing.T) {
	h := newHub(t, memstore.New(10), queue.Options{History: 5})
	for i := range 40 {
		send(t, h, "r", fmt.Sprint(i))
	}
	resp, err := h.Read(context.Background(), "r", queue.Query{After: after(3), Limit: 100})
	require.NoError(t, err)
	require.True(t, resp.Gap)
	require.Equal(t, span(31, 40), seqs(resp.Messages), "a gap delivers what is still retained")
	require.EqualValues(t, 40, resp.Next)
	// Having caught up, the next poll has no gap.
	resp, err = h.Read(context.Background(), "r", queue.Query{After: after(40)})
	require.NoError(t, err)
	require.False(t, resp.Gap)
}

func TestBeforePagesThroughHistory(t *testing.T) {
	h := newHub(t, memstore.New(0), queue.Options{History: 7})
	for i := range 30 {
		send(t, h, "r", fmt.Sprint(i))
	}
	ctx := context.Background()
	var all []uint64
	cursor := uint64(31)
	for {
		page, err := h.Read(ctx, "r", queue.Query{Before: &cursor, Limit: 4})
		require.NoError(t, err)
		require.EqualValues(t, 30, page.Next)
		if len(page.Messages) == 0 {
			break
		}
		require.LessOrEqual(t, len(page.Messages), 4)
		all = append(seqs(page.Messages), all...)
		cursor = page.Messages[0].Seq
	}
	require.Equal(t, span(1, 30), all, "pages join up across the window and the store with no hole or overlap")

	huge := uint64(1000)
	page, err := h.Read(ctx, "r", queue.Query{Before: &huge, Limit: 3})
	require.NoError(t, err)
	require.Equal(t, span(28, 30), seqs(page.Messages))
}

func TestIdempotentAppend(t *testing.T) {
	h := newHub(t, memstore.New(0), queue.Options{})
	m := shared.Message{Room: "r", Kind: shared.KindText, Author: "a", Text: "x", ClientMsgID: "abc"}
	first, dup, err := h.Append(context.Background(), m)
	require.NoError(t, err)
	require.False(t, dup)
	again, dup, err := h.Append(context.Background(), m)
	require.NoError(t, err)
	require.True(t, dup)
	require.Equal(t, first, again)
	resp, err := h.Read(context.Background(), "r", queue.Query{})
	require.NoError(t, err)
	require.Len(t, resp.Messages, 1, "a repeated send is not logged twice")
}

func TestWindowLoadedFromStoreOnFirstUse(t *testing.T) {
	store := memstore.New(0)
	h1 := queue.New(store, queue.Options{})
	for i := range 12 {
		send(t, h1, "r", fmt.Sprint(i))
	}
	h1.Close()
	// A new hub over the same store (a restart with a durable store)
	// continues the log with the same epoch.
	h2 := newHub(t, store, queue.Options{History: 5})
	resp, err := h2.Read(context.Background(), "r", queue.Query{After: after(9)})
	require.NoError(t, err)
	require.Equal(t, span(10, 12), seqs(resp.Messages))
	require.EqualValues(t, 13, send(t, h2, "r", "next").Seq)
}

func TestMaxRoomsCountsOnlyRoomsInUse(t *testing.T) {
	h := newHub(t, memstore.New(0), queue.Options{MaxRooms: 2})
	send(t, h, "a", "x")
	send(t, h, "b", "x")
	// Both rooms are idle: a third takes the place of the coldest.
	send(t, h, "c", "x")
	require.Equal(t, 2, h.Rooms())
	require.EqualValues(t, 1, h.Evictions())
	// Held reads keep b and c in memory: now there is no place.
	ctx := context.Background()
	for _, room := range []string{"b", "c"} {
		p, w, err := h.Watch(ctx, room, queue.Query{After: after(1), Wait: time.Minute}, newRecorder())
		require.NoError(t, err)
		require.Nil(t, p)
		t.Cleanup(func() { w.Cancel() })
	}
	_, _, err := h.Append(ctx, shared.Message{Room: "a", Kind: shared.KindText, Author: "t", Text: "y"})
	require.ErrorIs(t, err, queue.ErrTooManyRooms)
}

// failingStore fails every append, to check that a store failure reaches
// every sender of the batch as an error, not a hang.
type failingStore struct{ queue.Store }

func (failingStore) Append(context.Context, []shared.Message) ([]queue.Result, error) {
	return nil, errors.New("disk on fire")
}

func TestStoreFailureIsReported(t *testing.T) {
	h := newHub(t, failingStore{memstore.New(0)}, queue.Options{})
	_, _, err := h.Append(context.Background(), shared.Message{Room: "r", Kind: shared.KindText, Author: "a", Text: "x"})
	require.ErrorIs(t, err, queue.ErrStore)
	resp, err := h.Read(context.Background(), "r", queue.Query{})
	require.NoError(t, err)
	require.Empty(t, resp.Messages, "nothing unstored is ever served")
}

// TestManySendersManyPollers is the core promise: every poller sees every
// message exactly once, in order, whatever the interleaving of senders,
// batches and wake-ups.
func TestManySendersManyPollers(t *testing.T) {
	const senders, perSender, pollers, rooms = 8, 150, 24, 3
	h := newHub(t, memstore.New(0), queue.Options{History: 64})
	ctx := context.Background()
	total := senders * perSender / rooms * rooms
	epochs := map[string]string{}
	for r := range rooms {
		resp, err := h.Read(ctx, fmt.Sprint("room", r), queue.Query{})
		require.NoError(t, err)
		epochs[fmt.Sprint("room", r)] = resp.Epoch
	}

	var wg sync.WaitGroup
	seen := make([][]shared.Message, pollers)
	for p := range pollers {
		room := fmt.Sprint("room", p%rooms)
		wg.Go(func() {
			var cur uint64
			want := total / rooms
			// Small limits force many batches and catch-ups from the store.
			limit := 1 + p%7
			for len(seen[p]) < want {
				resp, err := h.Read(ctx, room, queue.Query{After: &cur, Epoch: epochs[room], Limit: limit, Wait: 10 * time.Second})
				if err != nil || resp.Reset || resp.Gap {
					t.Errorf("poller %d: err=%v reset=%v gap=%v", p, err, resp.Reset, resp.Gap)
					return
				}
				if len(resp.Messages) == 0 {
					t.Errorf("poller %d timed out at %d of %d", p, len(seen[p]), want)
					return
				}
				seen[p] = append(seen[p], resp.Messages...)
				cur = resp.Next
			}
		})
	}
	for s := range senders {
		wg.Go(func() {
			for i := range perSender {
				room := fmt.Sprint("room", i%rooms)
				if _, _, err := h.Append(ctx, shared.Message{Room: room, Kind: shared.KindText, Author: fmt.Sprint("s", s), Text: fmt.Sprint(i)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for p, msgs := range seen {
		require.Equal(t, span(1, uint64(total/rooms)), seqs(msgs), "poller %d saw every seq once, in order", p)
		perAuthor := map[string]int{}
		for _, m := range msgs {
			require.Equal(t, fmt.Sprint("room", p%rooms), m.Room)
			perAuthor[m.Author]++
		}
		require.Len(t, perAuthor, senders)
	}
}

// gatedStore holds its first Append until released and counts calls, to
// show that senders arriving during a commit share the next one.
type gatedStore struct {
	queue.Store
	mu      sync.Mutex
	calls   int
	sizes   []int
	release chan struct{}
}

func (g *gatedStore) Append(ctx context.Context, msgs []shared.Message) ([]queue.Result, error) {
	g.mu.Lock()
	g.calls++
	first := g.calls == 1
	g.sizes = append(g.sizes, len(msgs))
	g.mu.Unlock()
	if first {
		<-g.release
	}
	return g.Store.Append(ctx, msgs)
}

func TestConcurrentSendersShareACommit(t *testing.T) {
	g := &gatedStore{Store: memstore.New(0), release: make(chan struct{})}
	h := newHub(t, g, queue.Options{})
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			if _, _, err := h.Append(context.Background(), shared.Message{Room: "r", Kind: shared.KindText, Author: "a", Text: fmt.Sprint(i)}); err != nil {
				t.Error(err)
			}
		})
	}
	// While the first commit is held, the other 39 queue up behind it.
	time.Sleep(300 * time.Millisecond)
	close(g.release)
	wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	require.LessOrEqual(t, g.calls, 5, "batch sizes %v: senders must share commits", g.sizes)
	resp, err := h.Read(context.Background(), "r", queue.Query{Limit: 100})
	require.NoError(t, err)
	require.Equal(t, span(1, 40), seqs(resp.Messages))
}
