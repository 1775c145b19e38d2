package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/parley-chat/parley/shared"
)

// Query is one read of a room's log.
type Query struct {
	// After is the reader's cursor: return messages with seq > After,
	// waiting up to Wait for one if there are none.
	After *uint64
	// Before asks for the page of messages older than this seq; no waiting.
	Before *uint64
	// Epoch is the epoch of the reader's cursor; a different one (or an
	// After beyond the log's end) answers Reset with the latest messages.
	Epoch string
	Limit int
	Wait  time.Duration
}

// Watch answers q at once when it can, returning the page and a nil
// Waiter. Otherwise it holds the read and returns its Waiter: rcv is told the
// answer exactly once, when a message arrives, when q.Wait has passed, when
// the hub drains or when the Waiter is released; Cancel withdraws it. A held
// read costs the hub no goroutine and no timer. With neither After nor Before
// it returns the newest Limit messages at once.
func (h *Hub) Watch(ctx context.Context, name string, q Query, rcv Receiver) (*Page, *Waiter, error) {
	if q.Limit <= 0 {
		q.Limit = shared.DefaultLimit
	}
	// Only a read that may be held keeps a room without messages in
	// memory beyond itself: the others need no share of MaxRooms.
	mayHold := q.After != nil && q.Wait > 0
	s, err := h.pin(ctx, name, !mayHold)
	if err != nil {
		return nil, nil, err
	}
	// A listed waiter keeps the room in memory once this pin is gone.
	defer h.unpin(s)
	r := s.r
	switch {
	case q.Before != nil:
		r.mu.Lock()
		epoch, last := r.epoch, r.last
		r.mu.Unlock()
		msgs, err := h.olderThan(ctx, r, min(*q.Before, last+1), q.Limit)
		if err != nil {
			return nil, nil, err
		}
		return newPage(r, epoch, msgs, last, false, false), nil, nil
	case q.After == nil:
		p, err := h.latest(ctx, r, q.Limit, false)
		return p, nil, err
	}
	after := *q.After
	if h.opt.SyncInterval > 0 {
		r.mu.Lock()
		ahead := (q.Epoch != "" && q.Epoch != r.epoch) || after > r.last
		r.mu.Unlock()
		if ahead {
			// With a shared store the cursor may come from another
			// instance that is ahead of this one (a load balancer moves
			// polls freely): catch up with the store before calling the
			// cursor void.
			if err := h.syncNow(ctx, r); err != nil {
				return nil, nil, err
			}
		}
	}
	r.mu.Lock()
	switch {
	case (q.Epoch != "" && q.Epoch != r.epoch) || after > r.last:
		r.mu.Unlock()
		p, err := h.latest(ctx, r, q.Limit, true)
		return p, nil, err
	case r.last > after:
		if r.win.covers(after + 1) {
			p := r.windowPage(after, q.Limit)
			r.mu.Unlock()
			return p, nil, nil
		}
		epoch, last := r.epoch, r.last
		r.mu.Unlock()
		p, err := h.catchUp(ctx, r, epoch, after, last, q.Limit)
		return p, nil, err
	case q.Wait <= 0 || h.isDraining():
		r.mu.Unlock()
		return r.emptyAt(after), nil, nil
	}
	w := &Waiter{room: r, wheel: h.wheel, rcv: rcv, after: after, limit: q.Limit}
	r.list(w)
	r.mu.Unlock()
	h.wheel.add(w, time.Now().Add(q.Wait))
	return nil, w, nil
}

// Read is Watch for a caller that can block: it returns the answer, or
// ctx's error if ctx ends first. It never returns both.
func (h *Hub) Read(ctx context.Context, name string, q Query) (*Page, error) {
	ch := make(chanReceiver, 1)
	p, w, err := h.Watch(ctx, name, q, ch)
	if err != nil || w == nil {
		return p, err
	}
	select {
	case p := <-ch:
		return p, nil
	case <-ctx.Done():
		if w.Cancel() {
			return nil, ctx.Err()
		}
		return <-ch, nil
	}
}

// chanReceiver hands the page to a blocked Read.
type chanReceiver chan *Page

func (c chanReceiver) Deliver(p *Page) { c <- p }

// catchUp serves a reader whose cursor is older than the window from the
// store, flagging a gap when the store no longer has what follows the cursor.
func (h *Hub) catchUp(ctx context.Context, r *room, epoch string, after, last uint64, limit int) (*Page, error) {
	msgs, err := h.store.Range(ctx, r.name, after+1, last, limit)
	if err != nil {
		return nil, fmt.Errorf("%w: read room %q from %d: %w", ErrStore, r.name, after+1, err)
	}
	if len(msgs) == 0 {
		r.mu.Lock()
		msgs = r.win.after(0, limit)
		r.mu.Unlock()
	}
	if len(msgs) == 0 {
		return newPage(r, epoch, nil, after, true, false), nil
	}
	gap := msgs[0].Seq != after+1
	return newPage(r, epoch, msgs, msgs[len(msgs)-1].Seq, gap, false), nil
}

func (h *Hub) latest(ctx context.Context, r *room, limit int, reset bool) (*Page, error) {
	r.mu.Lock()
	epoch, last := r.epoch, r.last
	r.mu.Unlock()
	msgs, err := h.olderThan(ctx, r, last+1, limit)
	if err != nil {
		return nil, err
	}
	return newPage(r, epoch, msgs, last, false, reset), nil
}

// olderThan returns the newest up to limit messages with seq < end, oldest
// first, from the window and, below it, from the store.
func (h *Hub) olderThan(ctx context.Context, r *room, end uint64, limit int) ([]shared.Message, error) {
	r.mu.Lock()
	msgs := r.win.before(end, limit)
	r.mu.Unlock()
	need := limit - len(msgs)
	top := end
	if len(msgs) > 0 {
		top = msgs[0].Seq
	}
	if need <= 0 || top <= 1 {
		return msgs, nil
	}
	from := uint64(1)
	if top-1 >= uint64(need) {
		from = top - uint64(need)
	}
	older, err := h.store.Range(ctx, r.name, from, top-1, need)
	if err != nil {
		return nil, fmt.Errorf("%w: read room %q history before %d: %w", ErrStore, r.name, top, err)
	}
	return append(older, msgs...), nil
}
