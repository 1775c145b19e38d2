package main

import (
	"context"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// returnIdleMemory gives heap memory that has been free for a while back to
// the operating system. A wave of polls (every waiter re-polling at once
// after a message, or thousands of browsers arriving together) allocates
// request buffers that net/http does not recycle across a hijack; they are
// garbage a moment later, but the Go runtime returns freed memory only as
// part of later collections, and a server whose waiters are all parked
// allocates nothing and so never collects: RSS stayed at the burst's peak
// (measured: 67 MB for 5,000 parked polls whose live heap was 10 MB). Checked
// every period; it acts only when free memory exceeds both floor and half
// of the live heap, so a steady server pays nothing.
func returnIdleMemory(ctx context.Context, period time.Duration, floor uint64, log *slog.Logger) {
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(samples)
		free, live := samples[0].Value.Uint64(), samples[1].Value.Uint64()
		if free > floor && free > live/2 {
			start := time.Now()
			debug.FreeOSMemory()
			log.Debug("returned idle memory", "free_mb", free>>20, "live_mb", live>>20, "took", time.Since(start))
		}
	}
}
