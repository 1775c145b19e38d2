package redisstore_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-chat/parley/server/internal/redistest"
	"github.com/parley-chat/parley/server/queue"
	"github.com/parley-chat/parley/server/redisstore"
	"github.com/parley-chat/parley/shared"
)

// BenchmarkAppend is one Append of a batch to a local Redis, with and
// without fsync per event-loop turn; ns/op is per batch.
func BenchmarkAppend(b *testing.B) {
	for _, c := range []struct {
		name string
		opt  redistest.Options
	}{
		{"no-persistence", redistest.Options{}},
		{"aof-always", redistest.Options{AOF: true, AppendFsync: "always"}},
	} {
		srv := redistest.Start(b, c.opt)
		for _, size := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s/batch=%d", c.name, size), func(b *testing.B) {
				s, err := redisstore.New(srv.Client(), redisstore.Options{Prefix: fmt.Sprintf("b%d:", size)})
				if err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				srv.Do("CONFIG", "RESETSTAT")
				batch := make([]shared.Message, size)
				n := 0
				for b.Loop() {
					for i := range batch {
						n++
						batch[i] = text("lobby", "alice", "a message of an ordinary length, typed by someone", fmt.Sprint("c", n))
					}
					if _, err := s.Append(ctx, batch); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/msg")
				// The time Redis itself spent in the script, apart from the
				// round trip and the client: what bounds a shared Redis.
				stats := srv.Do("INFO", "commandstats").(string)
				if _, rest, ok := strings.Cut(stats, "cmdstat_evalsha:"); ok {
					if _, v, ok := strings.Cut(rest, "usec_per_call="); ok {
						v, _, _ = strings.Cut(v, ",")
						if us, err := strconv.ParseFloat(v, 64); err == nil {
							b.ReportMetric(us*1000/float64(size), "redis-ns/msg")
						}
					}
				}
			})
		}
	}
}

// deliveredAt records when a held read was answered.
type deliveredAt chan time.Time

func (d deliveredAt) Deliver(*queue.Page) { d <- time.Now() }

// BenchmarkCrossInstanceDelivery is one message sent through one hub and
// delivered to a read held on another hub on the same Redis: the append
// script, the notification through pub/sub, and the publish into the
// second hub's window. It reports the latency's p50 and p99.
func BenchmarkCrossInstanceDelivery(b *testing.B) {
	for _, c := range []struct {
		name string
		opt  redistest.Options
	}{
		{"no-persistence", redistest.Options{}},
		{"aof-always", redistest.Options{AOF: true, AppendFsync: "always"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			srv := redistest.Start(b, c.opt)
			a, o := startInstance(b, srv, time.Hour), startInstance(b, srv, time.Hour)
			ctx := context.Background()
			first, _, err := a.hub.Append(ctx, shared.Message{Room: "r", Kind: shared.KindText, Author: "a", Text: "warm"})
			if err != nil {
				b.Fatal(err)
			}
			cursor := first.Seq
			var lat []time.Duration
			got := make(deliveredAt, 1)
			for b.Loop() {
				after := cursor
				for {
					p, w, err := o.hub.Watch(ctx, "r", queue.Query{After: &after, Wait: time.Minute}, got)
					if err != nil {
						b.Fatal(err)
					}
					if w != nil {
						break
					}
					after = p.Next // o had not caught up with the last one yet
				}
				start := time.Now()
				m, _, err := a.hub.Append(ctx, shared.Message{Room: "r", Kind: shared.KindText, Author: "a", Text: "a message"})
				if err != nil {
					b.Fatal(err)
				}
				lat = append(lat, (<-got).Sub(start))
				cursor = m.Seq
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
