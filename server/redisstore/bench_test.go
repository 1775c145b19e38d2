package redisstore_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/parley-chat/parley/server/internal/redistest"
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
