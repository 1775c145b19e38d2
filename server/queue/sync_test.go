package queue_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parley-chat/parley/server/memstore"
	"github.com/parley-chat/parley/server/queue"
	"github.com/parley-chat/parley/shared"
)

// Two hubs on one memory store stand for two instances on one Redis: what
// one appends, the other learns by Notify or Sync. Sync periods are long
// unless a test is about them, so each test sees the path it names.

const noTick = time.Hour

// hold starts a held read of room at cursor after and returns its recorder.
func hold(t *testing.T, h *queue.Hub, room, epoch string, after uint64) *recorder {
	t.Helper()
	rec := newRecorder()
	p, w, err := h.Watch(context.Background(), room, queue.Query{After: &after, Epoch: epoch, Wait: time.Minute}, rec)
	require.NoError(t, err)
	require.Nil(t, p, "expected the read to be held")
	require.NotNil(t, w)
	// A room without messages left memory when position's read ended, and
	// this read loaded it again: let the check of a loaded room finish.
	time.Sleep(100 * time.Millisecond)
	return rec
}

// position loads room in h and returns its epoch and last seq. It lets the
// check a shared hub makes of every room it loads finish first, so that the
// tests see only the path they are about.
func position(t *testing.T, h *queue.Hub, room string) (string, uint64) {
	t.Helper()
	p, err := h.Read(context.Background(), room, queue.Query{Limit: 1})
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond)
	return p.Epoch, p.Next
}

func TestNotifyWakesAnotherHubsWaiters(t *testing.T) {
	store := memstore.New(0)
	a := newHub(t, store, queue.Options{SyncInterval: noTick})
	b := newHub(t, store, queue.Options{SyncInterval: noTick})
	epoch, last := position(t, b, "lobby")
	rec := hold(t, b, "lobby", epoch, last)

	m := send(t, a, "lobby", "hello")
	b.Notify("lobby", epoch, []shared.Message{m})
	p := rec.wait(t)
	require.Equal(t, []uint64{1}, seqs(p.Messages))
	require.Equal(t, "hello", p.Messages[0].Text)

	// The same notification again (a's own, or a duplicate) changes nothing.
	b.Notify("lobby", epoch, []shared.Message{m})
	rec2 := hold(t, b, "lobby", epoch, 1)
	time.Sleep(50 * time.Millisecond)
	require.Zero(t, rec2.count())
}

func TestNotifyOutOfOrderFillsFromTheStoreFirst(t *testing.T) {
	store := memstore.New(0)
	a := newHub(t, store, queue.Options{SyncInterval: noTick})
	b := newHub(t, store, queue.Options{SyncInterval: noTick})
	epoch, _ := position(t, b, "lobby")
	rec := hold(t, b, "lobby", epoch, 0)

	var m shared.Message
	for range 3 {
		m = send(t, a, "lobby", "x")
	}
	b.Notify("lobby", epoch, []shared.Message{m}) // 1 and 2 were lost
	p := rec.wait(t)
	require.Equal(t, []uint64{1, 2, 3}, seqs(p.Messages), "woken only once the hole was filled")
}

func TestNotifyOfAnUnloadedRoomIsIgnored(t *testing.T) {
	store := memstore.New(0)
	a := newHub(t, store, queue.Options{SyncInterval: noTick})
	b := newHub(t, store, queue.Options{SyncInterval: noTick})
	m := send(t, a, "lobby", "x")
	b.Notify("lobby", "whatever", []shared.Message{m})
	epoch, last := position(t, b, "lobby") // loads from the store
	require.EqualValues(t, 1, last)
	require.NotEmpty(t, epoch)
}

func TestRoomsWithWaitersAreCheckedEveryInterval(t *testing.T) {
	store := memstore.New(0)
	a := newHub(t, store, queue.Options{SyncInterval: noTick})
	b := newHub(t, store, queue.Options{SyncInterval: 50 * time.Millisecond})
	epoch, _ := position(t, b, "lobby")
	rec := hold(t, b, "lobby", epoch, 0)
	start := time.Now()
	send(t, a, "lobby", "never notified")
	p := rec.wait(t)
	require.Equal(t, []uint64{1}, seqs(p.Messages))
	require.Less(t, time.Since(start), 2*time.Second)
}

func TestOwnAppendAfterAnUnseenOneFillsTheHole(t *testing.T) {
	store := memstore.New(0)
	a := newHub(t, store, queue.Options{SyncInterval: noTick})
	b := newHub(t, store, queue.Options{SyncInterval: noTick})
	epoch, _ := position(t, b, "lobby")
	rec := hold(t, b, "lobby", epoch, 0)
	send(t, a, "lobby", "from a") // b is not told
	m := send(t, b, "lobby", "from b")
	require.EqualValues(t, 2, m.Seq)
	p := rec.wait(t)
	require.Equal(t, []uint64{1, 2}, seqs(p.Messages))
}

// swapStore is a store whose log can be replaced by a fresh one, as when
// Redis restarts without persistence.
type swapStore struct {
	mu sync.Mutex
	s  *memstore.Store
}

func (w *swapStore) cur() *memstore.Store {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.s
}

func (w *swapStore) swap() *memstore.Store {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.s = memstore.New(0)
	return w.s
}

func (w *swapStore) LoadRoom(ctx context.Context, room string) (queue.RoomState, error) {
	return w.cur().LoadRoom(ctx, room)
}

func (w *swapStore) Append(ctx context.Context, msgs []shared.Message) ([]queue.Result, error) {
	return w.cur().Append(ctx, msgs)
}

func (w *swapStore) Range(ctx context.Context, room string, from, to uint64, limit int) ([]shared.Message, error) {
	return w.cur().Range(ctx, room, from, to, limit)
}

func (w *swapStore) Close() error { return nil }

func TestSyncAllResetsReadersOfALogCreatedAnew(t *testing.T) {
	store := &swapStore{s: memstore.New(0)}
	h := newHub(t, store, queue.Options{SyncInterval: noTick})
	for range 5 {
		send(t, h, "lobby", "old")
	}
	epoch, last := position(t, h, "lobby")
	rec := hold(t, h, "lobby", epoch, last)

	fresh := store.swap()
	_, err := fresh.Append(context.Background(), []shared.Message{{Room: "lobby", Kind: shared.KindText, Author: "x", Text: "new"}})
	require.NoError(t, err)
	h.SyncAll()
	p := rec.wait(t)
	require.True(t, p.Reset)
	require.NotEqual(t, epoch, p.Epoch)
	require.Equal(t, []uint64{1}, seqs(p.Messages))
	require.EqualValues(t, 1, p.Next)

	// A reader still at the old epoch is reset too; the new one reads on.
	old, err := h.Read(context.Background(), "lobby", queue.Query{After: &last, Epoch: epoch})
	require.NoError(t, err)
	require.True(t, old.Reset)
	rec2 := hold(t, h, "lobby", p.Epoch, 1)
	m := send(t, h, "lobby", "next")
	require.EqualValues(t, 2, m.Seq)
	require.Equal(t, []uint64{2}, seqs(rec2.wait(t).Messages))
}

func TestSyncOfARoomFarBehindLetsReadersCatchUp(t *testing.T) {
	store := memstore.New(0)
	a := newHub(t, store, queue.Options{SyncInterval: noTick})
	b := newHub(t, store, queue.Options{History: 10, SyncInterval: noTick})
	epoch, _ := position(t, b, "lobby")
	rec := hold(t, b, "lobby", epoch, 0)
	for range 25 {
		send(t, a, "lobby", "x")
	}
	b.Sync("lobby")
	p := rec.wait(t)
	require.False(t, p.Reset)
	require.Equal(t, epoch, p.Epoch)
	// Answered at its cursor or with what follows it: either way the reader
	// reads on from there and gets everything, densely.
	var got []uint64
	next := uint64(0)
	got = append(got, seqs(p.Messages)...)
	if len(p.Messages) > 0 {
		next = p.Next
	}
	for next < 25 {
		q, err := b.Read(context.Background(), "lobby", queue.Query{After: &next, Epoch: epoch, Limit: 7})
		require.NoError(t, err)
		require.False(t, q.Gap)
		got = append(got, seqs(q.Messages)...)
		next = q.Next
	}
	require.Equal(t, span(1, 25), got)
}

func TestNotifyAfterCloseIsHarmless(t *testing.T) {
	store := memstore.New(0)
	h := queue.New(store, queue.Options{SyncInterval: 10 * time.Millisecond})
	epoch, _ := position(t, h, "lobby")
	h.Close()
	h.Notify("lobby", epoch, []shared.Message{{Room: "lobby", Seq: 1}})
	h.SyncAll()
}

// A poll that moves to an instance that has not yet heard of the messages
// its cursor is past is caught up from the store, not reset.
func TestCursorFromAnInstanceAheadIsNotReset(t *testing.T) {
	store := memstore.New(0)
	a := newHub(t, store, queue.Options{SyncInterval: noTick})
	b := newHub(t, store, queue.Options{SyncInterval: noTick})
	epoch, _ := position(t, b, "lobby")
	for range 3 {
		send(t, a, "lobby", "x")
	}
	p, err := b.Read(context.Background(), "lobby", queue.Query{After: after(2), Epoch: epoch})
	require.NoError(t, err)
	require.False(t, p.Reset)
	require.Equal(t, []uint64{3}, seqs(p.Messages))

	// Beyond the store's end, or another epoch, is still void.
	p, err = b.Read(context.Background(), "lobby", queue.Query{After: after(9), Epoch: epoch})
	require.NoError(t, err)
	require.True(t, p.Reset)
	p, err = b.Read(context.Background(), "lobby", queue.Query{After: after(1), Epoch: "other"})
	require.NoError(t, err)
	require.True(t, p.Reset)
}
