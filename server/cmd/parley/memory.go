package main

import (
	"context"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// returnIdleMemory gives heap memory back to the operating system once a
// burst is over. A wave of polls (every waiter re-polling at once after a
// message, or thousands of browsers arriving together) allocates request
// buffers that net/http does not recycle across a hijack; they are garbage a
// moment later, but the Go runtime returns freed memory only as part of
// later collections, and a server whose waiters are all parked allocates
// nothing and so never collects: RSS stayed at the burst's peak (measured:
// 67 MB for 5,000 parked polls whose live heap was 10 MB; 26 MB with this).
// Every period it reads the runtime's allocation counter; when the server
// has gone quiet (less than quiet bytes allocated since the last look) after
// allocating more than burst bytes since memory was last returned, it
// collects and returns what is free. The garbage of a burst is not "free"
// until a collection, which a quiet server never starts: hence the forced
// one. A busy server is left alone: forcing collections while it works
// would cost CPU for memory it is about to reuse.
func returnIdleMemory(ctx context.Context, period time.Duration, quiet, burst uint64, log *slog.Logger) {
	samples := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}}
	t := time.NewTicker(period)
	defer t.Stop()
	var lastAllocs, returnedAt uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(samples)
		allocs := samples[0].Value.Uint64()
		busy := allocs-lastAllocs > quiet
		lastAllocs = allocs
		if busy || allocs-returnedAt <= burst {
			continue
		}
		start := time.Now()
		debug.FreeOSMemory()
		metrics.Read(samples)
		// The collection's own allocations are not the server's.
		lastAllocs, returnedAt = samples[0].Value.Uint64(), samples[0].Value.Uint64()
		log.Debug("returned idle memory", "live_mb", samples[1].Value.Uint64()>>20, "took", time.Since(start))
	}
}
