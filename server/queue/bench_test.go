package queue_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/server/memstore"
	"github.com/parley-chat/parley/server/queue"
	"github.com/parley-chat/parley/shared"
)

// BenchmarkPublish measures one append to a room with N long-polling
// readers parked on it; each reader re-polls from its cursor as soon as it
// is woken, as a browser does. The per-op cost must not grow with N under
// the room's lock: waking is one channel close.
func BenchmarkPublish(b *testing.B) {
	for _, waiters := range []int{0, 100, 10_000} {
		b.Run(fmt.Sprint("waiters=", waiters), func(b *testing.B) {
			h := queue.New(memstore.New(0), queue.Options{History: 1000})
			defer h.Close()
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			parked := make(chan struct{}, waiters)
			for range waiters {
				wg.Go(func() {
					var cur uint64
					first := true
					for ctx.Err() == nil {
						if first {
							parked <- struct{}{}
							first = false
						}
						resp, err := h.Read(ctx, "lobby", queue.Query{After: &cur, Limit: 500, Wait: time.Minute})
						if err != nil {
							return
						}
						cur = resp.Next
					}
				})
			}
			for range waiters {
				<-parked
			}
			time.Sleep(100 * time.Millisecond) // let them park in Read
			msg := shared.Message{Room: "lobby", Kind: shared.KindText, Author: "bench", Text: "hello"}
			b.ResetTimer()
			for b.Loop() {
				if _, _, err := h.Append(ctx, msg); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if waiters > 0 {
				// Each append wakes every reader, who re-polls: this is the
				// whole cost of one delivery, spread over the cores.
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*waiters), "ns/delivery")
			}
			cancel()
			wg.Wait()
		})
	}
}

// BenchmarkPollHot measures a poll whose answer is already in the window:
// the common case of a reader one batch behind.
func BenchmarkPollHot(b *testing.B) {
	h := queue.New(memstore.New(0), queue.Options{History: 1000})
	defer h.Close()
	ctx := context.Background()
	for i := range 1000 {
		if _, _, err := h.Append(ctx, shared.Message{Room: "lobby", Kind: shared.KindText, Author: "bench", Text: fmt.Sprint(i)}); err != nil {
			b.Fatal(err)
		}
	}
	cur := uint64(990)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := h.Read(ctx, "lobby", queue.Query{After: &cur, Limit: 50})
		if err != nil || len(resp.Messages) != 10 {
			b.Fatal(err, len(resp.Messages))
		}
	}
}

// BenchmarkPollParallel measures hot polls from all cores on one room, the
// contention on the room's lock.
func BenchmarkPollParallel(b *testing.B) {
	h := queue.New(memstore.New(0), queue.Options{History: 1000})
	defer h.Close()
	ctx := context.Background()
	for i := range 100 {
		if _, _, err := h.Append(ctx, shared.Message{Room: "lobby", Kind: shared.KindText, Author: "bench", Text: fmt.Sprint(i)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		cur := uint64(95)
		for pb.Next() {
			if _, err := h.Read(ctx, "lobby", queue.Query{After: &cur, Limit: 50}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// countingReceiver re-arms nothing: it counts deliveries, so the benchmark
// measures the core's own cost of answering N held reads.
type countingReceiver struct{ n *sync.WaitGroup }

func (c countingReceiver) Deliver(*queue.Page) { c.n.Done() }

// BenchmarkFanOut measures one publish answering N held reads through
// Receivers: no goroutine per waiter, one shared page.
func BenchmarkFanOut(b *testing.B) {
	for _, waiters := range []int{100, 10_000} {
		b.Run(fmt.Sprint("waiters=", waiters), func(b *testing.B) {
			h := queue.New(memstore.New(0), queue.Options{History: 1000})
			defer h.Close()
			ctx := context.Background()
			msg := shared.Message{Room: "lobby", Kind: shared.KindText, Author: "bench", Text: "hello"}
			var cur uint64
			var wg sync.WaitGroup
			rcv := countingReceiver{&wg}
			for b.Loop() {
				b.StopTimer()
				wg.Add(waiters)
				for range waiters {
					if _, w, err := h.Watch(ctx, "lobby", queue.Query{After: &cur, Limit: 100, Wait: time.Minute}, rcv); err != nil || w == nil {
						b.Fatal("not held", err)
					}
				}
				b.StartTimer()
				m, _, err := h.Append(ctx, msg)
				if err != nil {
					b.Fatal(err)
				}
				wg.Wait()
				cur = m.Seq
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*waiters), "ns/delivery")
		})
	}
}

// BenchmarkWatch measures holding and cancelling one read: the per-poll
// cost of the waiter list and the timer wheel.
func BenchmarkWatch(b *testing.B) {
	h := queue.New(memstore.New(0), queue.Options{History: 1000})
	defer h.Close()
	ctx := context.Background()
	var cur uint64
	var wg sync.WaitGroup
	for b.Loop() {
		_, w, err := h.Watch(ctx, "lobby", queue.Query{After: &cur, Limit: 100, Wait: time.Minute}, countingReceiver{&wg})
		if err != nil || w == nil {
			b.Fatal("not held", err)
		}
		w.Cancel()
	}
}
