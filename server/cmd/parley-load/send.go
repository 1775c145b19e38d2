package main

import (
	"context"
	"fmt"
	"hash/fnv"
	"sync/atomic"
	"time"

	"github.com/parley-chat/parley/app/api"
	"github.com/parley-chat/parley/server/cmd/internal/loadkit"
	"github.com/parley-chat/parley/shared"
)

// roomAcks accumulates the acknowledged messages of one room. The pollers
// compare against it at the end: same count and same checksum of (seq,
// text) means each received exactly the acknowledged set.
type roomAcks struct {
	name   string
	count  atomic.Int64
	sum    atomic.Uint64 // Σ fingerprint(seq, text), wrapping
	maxSeq atomic.Uint64
}

func (a *roomAcks) ack(m shared.Message) {
	a.count.Add(1)
	a.sum.Add(fingerprint(m.Seq, m.Text))
	for {
		cur := a.maxSeq.Load()
		if m.Seq <= cur || a.maxSeq.CompareAndSwap(cur, m.Seq) {
			return
		}
	}
}

func fingerprint(seq uint64, text string) uint64 {
	h := fnv.New64a()
	var b [8]byte
	for i := range b {
		b[i] = byte(seq >> (8 * i))
	}
	_, _ = h.Write(b[:])
	_, _ = h.Write([]byte(text))
	return h.Sum64()
}

// send posts this sender's messages at the configured rate. A send that is
// throttled (429) waits and retries; one that fails is retried a few times
// with the same client_msg_id, which the server turns into one message.
func (lr *loadRun) send(ctx context.Context, s *sender, room *roomAcks, idx int, start time.Time, h *hist, lastAck *atomic.Int64) {
	for j := range lr.cfg.messages {
		if lr.cfg.rate > 0 {
			// Senders are spread evenly over each period rather than all
			// sending at its start, as independent people would.
			phase := float64(idx) / float64(lr.cfg.senders)
			due := start.Add(time.Duration((float64(j) + phase) / lr.cfg.rate * float64(time.Second)))
			if !loadkit.Sleep(ctx, time.Until(due)) {
				return
			}
		}
		sentAt := time.Now()
		req := shared.SendRequest{
			Text:        fmt.Sprintf("load %s s%d m%d t=%d", lr.runID, idx, j, sentAt.UnixNano()),
			ClientMsgID: fmt.Sprintf("%s-%d-%d", lr.runID, idx, j),
		}
		failures := 0
		for {
			t0 := time.Now()
			m, err := s.api.Send(ctx, s.token, room.name, req)
			if err == nil {
				h.add(time.Since(t0))
				room.ack(m)
				for {
					cur, now := lastAck.Load(), int64(time.Since(start))
					if now <= cur || lastAck.CompareAndSwap(cur, now) {
						break
					}
				}
				break
			}
			if ctx.Err() != nil {
				return
			}
			if api.Code(err) == shared.CodeRateLimited {
				lr.throttled.Add(1)
				if !loadkit.Sleep(ctx, max(api.RetryAfter(err), 100*time.Millisecond)) {
					return
				}
				continue
			}
			failures++
			if failures > 3 {
				lr.errs.add("send %s: %v", req.ClientMsgID, err)
				return
			}
			if !loadkit.Sleep(ctx, 100*time.Millisecond) {
				return
			}
		}
	}
}
