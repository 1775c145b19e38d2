package main

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-chat/parley/app/api"
	"github.com/parley-chat/parley/server/cmd/internal/loadkit"
	"github.com/parley-chat/parley/shared"
)

// pollerStats is one poller's account; only its goroutine writes it until
// the run ends.
type pollerStats struct {
	room                     *roomAcks
	cursor                   atomic.Uint64
	polls, empty             int
	received, ours           int64
	sum                      uint64
	lost, dups, gaps, resets int
	delivery                 hist
}

// poll is one reader: it long-polls its room with its cursor and epoch,
// checking that the seqs it receives follow each other with no hole and no
// repeat.
func (lr *loadRun) poll(ctx context.Context, c *api.Client, ps *pollerStats, room, idx int, started *sync.WaitGroup) {
	first, err := c.Poll(ctx, "", ps.room.name, shared.PollRequest{Limit: shared.Ptr(1)})
	started.Done()
	if err != nil {
		lr.errs.add("poller %d/%d: first poll: %v", room, idx, err)
		return
	}
	cursor, epoch := first.Next, first.Epoch
	ps.cursor.Store(cursor)
	for {
		if lr.finalsSet.Load() && cursor >= lr.finals[room].Load() {
			return
		}
		if held := lr.inFlight.Add(1); held > lr.heldMax.Load() {
			for {
				cur := lr.heldMax.Load()
				if held <= cur || lr.heldMax.CompareAndSwap(cur, held) {
					break
				}
			}
		}
		// The client makes every poll URL unique, as the browser's does, so
		// that no cache or request coalescing can answer two polls with one
		// reply.
		var pr loadkit.LeanPoll
		err := c.PollInto(ctx, "", ps.room.name, shared.PollRequest{
			After: &cursor, Epoch: epoch, Wait: &lr.cfg.wait, Limit: shared.Ptr(shared.MaxLimit),
		}, &pr)
		lr.inFlight.Add(-1)
		now := time.Now()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			lr.errs.add("poller %d/%d after=%d: %v", room, idx, cursor, err)
			if !loadkit.Sleep(ctx, max(api.RetryAfter(err), 100*time.Millisecond)) {
				return
			}
			continue
		}
		ps.polls++
		if pr.Reset {
			// The server lost this room's log (a memory store restarted):
			// a failure of the run; follow the new log rather than spin.
			ps.resets++
			epoch, cursor = pr.Epoch, pr.Next
			ps.cursor.Store(cursor)
			continue
		}
		if pr.Gap {
			ps.gaps++
		}
		if len(pr.Messages) == 0 {
			ps.empty++
		}
		for _, m := range pr.Messages {
			ps.received++
			if m.Seq <= cursor {
				ps.dups++
				continue
			}
			if m.Seq != cursor+1 {
				ps.lost += int(m.Seq - cursor - 1)
			}
			cursor = m.Seq
			if sentNS, ok := lr.ours(m.Text); ok {
				ps.ours++
				ps.sum += fingerprint(m.Seq, m.Text)
				ps.delivery.add(now.Sub(time.Unix(0, sentNS)))
			}
		}
		// Follow next as a client does; a next beyond the last message
		// received skips messages, which is loss.
		switch {
		case pr.Next > cursor:
			ps.lost += int(pr.Next - cursor)
			cursor = pr.Next
		case pr.Next < cursor:
			lr.errs.add("poller %d/%d: next=%d went back from %d", room, idx, pr.Next, cursor)
		}
		ps.cursor.Store(cursor)
	}
}

// ours parses the send time out of this run's message text.
func (lr *loadRun) ours(text string) (int64, bool) {
	rest, ok := strings.CutPrefix(text, "load "+lr.runID+" ")
	if !ok {
		return 0, false
	}
	_, ts, ok := strings.Cut(rest, " t=")
	if !ok {
		return 0, false
	}
	ns, err := strconv.ParseInt(ts, 10, 64)
	return ns, err == nil
}
