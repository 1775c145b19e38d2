package queue

import (
	"context"
	"fmt"
	"time"
)

// pin returns the room's slot, loaded, and pinned: the caller must unpin
// it when done. The load runs once however many requests ask for the room
// at the same time. A read that may be held (write false) of a new room
// without messages fails with ErrTooManyRooms when such rooms already take
// their share; a write, or a read answered at once, never does.
func (h *Hub) pin(ctx context.Context, name string, write bool) (*roomSlot, error) {
	for {
		s, err := h.pinOnce(ctx, name, write)
		if err == errEmptyShare && write {
			continue // a read's refusal is no reason to refuse a write
		}
		return s, err
	}
}

func (h *Hub) pinOnce(ctx context.Context, name string, write bool) (*roomSlot, error) {
	h.mu.Lock()
	s, ok := h.rooms[name]
	if ok {
		s.pins.Add(1)
		s.touch(h.clock.Load())
		h.mu.Unlock()
		select {
		case <-s.ready:
		case <-ctx.Done():
			// Not a room's last use to act on: a room left behind
			// without messages goes at the next sweep.
			s.pins.Add(-1)
			return nil, ctx.Err()
		}
		if s.err != nil {
			s.pins.Add(-1)
			return nil, s.err
		}
		return s, nil
	}
	if len(h.rooms) >= h.opt.MaxRooms && !h.evictColdestLocked() {
		h.mu.Unlock()
		return nil, ErrTooManyRooms
	}
	s = &roomSlot{ready: make(chan struct{})}
	s.pins.Store(1)
	s.used.Store(h.clock.Load())
	h.rooms[name] = s
	h.mu.Unlock()
	// One client giving up must not fail the load for the others waiting.
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	s.r, s.err = h.load(lctx, name)
	cancel()
	if s.err == nil && s.r.last == 0 {
		if h.acct.takeEmpty(h.opt.MaxRooms, write) {
			s.r.unborn = true
		} else {
			s.r, s.err = nil, errEmptyShare
		}
	}
	if s.err != nil {
		h.mu.Lock()
		delete(h.rooms, name)
		h.mu.Unlock()
		close(s.ready)
		return nil, s.err
	}
	close(s.ready)
	if h.opt.SyncInterval > 0 {
		// Notifications that arrived while the room was loading were
		// dropped (it was not loaded yet): check it once.
		h.syncs.mark(s.r)
	}
	return s, nil
}

func (h *Hub) load(ctx context.Context, name string) (*room, error) {
	st, err := h.store.LoadRoom(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("%w: load room %q: %w", ErrStore, name, err)
	}
	r := &room{name: name, epoch: st.Epoch, last: st.Last, win: newWindow(h.opt.History), acct: h.acct}
	if st.Last > 0 {
		from := max(st.First, 1)
		if st.Last >= uint64(h.opt.History) {
			from = max(from, st.Last-uint64(h.opt.History)+1)
		}
		msgs, err := h.store.Range(ctx, name, from, st.Last, h.opt.History)
		if err != nil {
			return nil, fmt.Errorf("%w: load room %q history: %w", ErrStore, name, err)
		}
		for _, m := range msgs {
			r.win.push(m)
		}
		r.account()
	}
	return r, nil
}
