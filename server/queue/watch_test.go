package queue_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parley-chat/parley/server/memstore"
	"github.com/parley-chat/parley/server/queue"
)

// recorder counts deliveries; a second delivery to one waiter is a bug.
type recorder struct {
	mu    sync.Mutex
	pages []*queue.Page
	got   chan *queue.Page
}

func newRecorder() *recorder { return &recorder{got: make(chan *queue.Page, 16)} }

func (r *recorder) Deliver(p *queue.Page) {
	r.mu.Lock()
	r.pages = append(r.pages, p)
	r.mu.Unlock()
	r.got <- p
}

func (r *recorder) wait(t *testing.T) *queue.Page {
	t.Helper()
	select {
	case p := <-r.got:
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery")
		return nil
	}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pages)
}

func TestWatchAnswersAtOnceWhenItCan(t *testing.T) {
	h := newHub(t, memstore.New(0), queue.Options{})
	send(t, h, "r", "a")
	p, w, err := h.Watch(context.Background(), "r", queue.Query{After: after(0), Wait: time.Minute}, newRecorder())
	require.NoError(t, err)
	require.Nil(t, w)
	require.Equal(t, []uint64{1}, seqs(p.Messages))
}

func TestOnePublishSharesOnePageAmongWaiters(t *testing.T) {
	h := newHub(t, memstore.New(0), queue.Options{})
	send(t, h, "r", "a")
	recs := make([]*recorder, 50)
	for i := range recs {
		recs[i] = newRecorder()
		limit := 100
		if i%2 == 1 {
			limit = 1
		}
		_, w, err := h.Watch(context.Background(), "r", queue.Query{After: after(1), Wait: time.Minute, Limit: limit}, recs[i])
		require.NoError(t, err)
		require.NotNil(t, w)
	}
	send(t, h, "r", "b")
	first := recs[0].wait(t)
	require.Equal(t, []uint64{2}, seqs(first.Messages))
	for _, r := range recs[1:] {
		require.Same(t, first, r.wait(t), "waiters at one cursor share one page")
	}
	var encodes atomic.Int32
	for range 10 {
		first.Encoded(func(*queue.Page) []byte { encodes.Add(1); return []byte("x") })
	}
	require.EqualValues(t, 1, encodes.Load())
}

func TestCancelledWaiterIsNeverDelivered(t *testing.T) {
	h := newHub(t, memstore.New(0), queue.Options{Tick: time.Millisecond})
	rec := newRecorder()
	_, w, err := h.Watch(context.Background(), "r", queue.Query{After: after(0), Wait: 20 * time.Millisecond}, rec)
	require.NoError(t, err)
	require.True(t, w.Cancel())
	require.False(t, w.Cancel(), "cancel happens once")
	send(t, h, "r", "a")
	time.Sleep(60 * time.Millisecond) // past the wait: neither publish nor timer delivers
	require.Zero(t, rec.count())
}

func TestReleaseAnswersEmptyOnce(t *testing.T) {
	h := newHub(t, memstore.New(0), queue.Options{})
	send(t, h, "r", "a")
	rec := newRecorder()
	_, w, err := h.Watch(context.Background(), "r", queue.Query{After: after(1), Wait: time.Hour}, rec)
	require.NoError(t, err)
	w.Release()
	p := rec.wait(t)
	require.Empty(t, p.Messages)
	require.EqualValues(t, 1, p.Next)
	w.Release()
	require.False(t, w.Cancel())
	send(t, h, "r", "b")
	time.Sleep(20 * time.Millisecond)
	require.Equal(t, 1, rec.count())
}

func TestWaitsEndOnTheirOwnTicks(t *testing.T) {
	h := newHub(t, memstore.New(0), queue.Options{Tick: 5 * time.Millisecond})
	short, long := newRecorder(), newRecorder()
	start := time.Now()
	_, _, err := h.Watch(context.Background(), "r", queue.Query{After: after(0), Wait: 30 * time.Millisecond}, short)
	require.NoError(t, err)
	_, _, err = h.Watch(context.Background(), "r", queue.Query{After: after(0), Wait: 300 * time.Millisecond}, long)
	require.NoError(t, err)
	require.Empty(t, short.wait(t).Messages)
	require.GreaterOrEqual(t, time.Since(start), 30*time.Millisecond)
	require.Zero(t, long.count(), "the longer wait is still held")
	require.Empty(t, long.wait(t).Messages)
	require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
}

// TestWaitersRacingPublishesGetEverythingOnce parks, cancels and releases
// waiters while messages are published, and checks every delivered page
// continues its waiter's cursor.
func TestWaitersRacingPublishesGetEverythingOnce(t *testing.T) {
	h := newHub(t, memstore.New(0), queue.Options{Tick: time.Millisecond})
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			var cur uint64
			for {
				select {
				case <-stop:
					return
				default:
				}
				rec := newRecorder()
				p, w, err := h.Watch(ctx, "r", queue.Query{After: &cur, Wait: 5 * time.Millisecond, Limit: 3}, rec)
				if err != nil {
					t.Error(err)
					return
				}
				if w != nil {
					switch i % 3 {
					case 1:
						if w.Cancel() {
							continue
						}
					case 2:
						w.Release()
					}
					p = rec.wait(t)
				}
				if len(p.Messages) > 0 && p.Messages[0].Seq != cur+1 {
					t.Errorf("cursor %d got %v", cur, seqs(p.Messages))
				}
				cur = p.Next
			}
		})
	}
	for range 300 {
		send(t, h, "r", "x")
	}
	close(stop)
	wg.Wait()
}

func TestReadersAtOneCursorShareOnePage(t *testing.T) {
	h := newHub(t, memstore.New(0), queue.Options{})
	send(t, h, "r", "a")
	rec := newRecorder()
	_, w, err := h.Watch(context.Background(), "r", queue.Query{After: after(1), Wait: time.Minute}, rec)
	require.NoError(t, err)
	require.NotNil(t, w)
	send(t, h, "r", "b")
	woken := rec.wait(t)
	// A reader that comes late to cursor 1 gets the page the waiter got.
	late, err := h.Read(context.Background(), "r", queue.Query{After: after(1)})
	require.NoError(t, err)
	require.Same(t, woken, late)
	// Readers at another cursor share theirs too, until the next publish.
	a, err := h.Read(context.Background(), "r", queue.Query{After: after(0), Limit: 5})
	require.NoError(t, err)
	b, err := h.Read(context.Background(), "r", queue.Query{After: after(0), Limit: 5})
	require.NoError(t, err)
	require.Same(t, a, b)
	require.Equal(t, []uint64{1, 2}, seqs(a.Messages))
	send(t, h, "r", "c")
	c, err := h.Read(context.Background(), "r", queue.Query{After: after(0), Limit: 5})
	require.NoError(t, err)
	require.Equal(t, []uint64{1, 2, 3}, seqs(c.Messages))
}
