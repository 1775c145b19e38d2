package queue

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"
)

// Rooms leave memory when nobody uses them: a room without messages (and
// not paid for, see Admit) as soon as its last request or held read is
// gone, any other room after
// Options.IdleTimeout without one. A room is used while a request has it
// pinned (Watch, Append) or a read is held on it; eviction takes Hub.mu and
// then the room's lock and checks both, and a pin is only taken under
// Hub.mu, so no request and no held read ever has its room evicted. What
// else may still hold an evicted room (a notification, a sync, a writer
// that looked it up just before) only updates a room nobody reads; the
// next request loads the room from the store afresh, where every message
// it was published was stored first.

// errEmptyShare refuses a read that would load one more room without
// messages than their share of Options.MaxRooms.
var errEmptyShare = fmt.Errorf("%w: rooms without messages take their share", ErrTooManyRooms)

// sweepsPerIdle is how many sweeps make an IdleTimeout.
const sweepsPerIdle = 4

// accounts is what the rooms count together: their windows' bytes, and
// the rooms without messages.
type accounts struct {
	budget   int64
	winBytes atomic.Int64
	over     chan struct{} // buffered 1: the windows are over budget
	unborn   atomic.Int64
}

// takeEmpty counts one more room without messages; a read is refused one
// beyond a quarter of maxRooms, a write never.
func (a *accounts) takeEmpty(maxRooms int, write bool) bool {
	if !write && a.unborn.Load() >= int64(max(1, maxRooms/4)) {
		return false
	}
	a.unborn.Add(1)
	return true
}

// account brings the hub's counts up to date with r; r.mu is held. It is
// called after every change to r's window, at O(1) cost: one atomic add.
func (r *room) account() {
	if r.evicted {
		return
	}
	if d := r.win.bytes - r.counted; d != 0 {
		r.counted = r.win.bytes
		if r.acct.winBytes.Add(d) > r.acct.budget && d > 0 {
			select {
			case r.acct.over <- struct{}{}:
			default:
			}
		}
	}
	if r.last > 0 && !r.kept.Load() {
		r.kept.Store(true)
	}
	if r.unborn && r.last > 0 {
		r.unborn = false
		r.acct.unborn.Add(-1)
	}
}

// touch records that the slot was used at sweep clock c; only a change is
// written, so a busy room's slot is not written by every request.
func (s *roomSlot) touch(c int64) {
	if s.used.Load() != c {
		s.used.Store(c)
	}
}

// loaded returns the slot's room once loaded, nil while loading or failed.
func (s *roomSlot) loaded() *room {
	select {
	case <-s.ready:
		return s.r
	default:
		return nil
	}
}

// unpin gives back a pin taken by pin. A room without messages leaves at
// once when it was the last use: reads of made-up rooms hold nothing.
func (h *Hub) unpin(s *roomSlot) {
	if s.pins.Add(-1) != 0 || s.r.kept.Load() {
		return
	}
	s.r.mu.Lock()
	empty := s.r.last == 0 && !s.r.paid && len(s.r.waiters) == 0
	s.r.mu.Unlock()
	if empty {
		h.mu.Lock()
		h.evictLocked(s.r.name, s)
		h.mu.Unlock()
	}
}

// evictLocked removes the slot's room from memory if nobody uses it, and
// reports whether it did; h.mu is held.
func (h *Hub) evictLocked(name string, s *roomSlot) bool {
	r := s.loaded()
	if h.rooms[name] != s || s.pins.Load() != 0 || r == nil {
		return false
	}
	r.mu.Lock()
	if len(r.waiters) > 0 {
		r.mu.Unlock()
		return false
	}
	r.evicted = true
	r.acct.winBytes.Add(-r.counted)
	r.counted = 0
	if r.unborn {
		r.unborn = false
		r.acct.unborn.Add(-1)
	}
	r.mu.Unlock()
	delete(h.rooms, name)
	h.evictions.Add(1)
	return true
}

// evictColdestLocked makes room for a new room by evicting the least
// recently used room nobody uses; h.mu is held. It is O(rooms), and runs
// only when MaxRooms are in memory.
func (h *Hub) evictColdestLocked() bool {
	var (
		coldName string
		cold     *roomSlot
	)
	for name, s := range h.rooms {
		if s.pins.Load() != 0 || s.loaded() == nil {
			continue
		}
		if cold == nil || s.used.Load() < cold.used.Load() {
			coldName, cold = name, s
		}
	}
	// The coldest may have held reads; then try the others, coldest first.
	if cold != nil && h.evictLocked(coldName, cold) {
		return true
	}
	for name, s := range h.rooms {
		if h.evictLocked(name, s) {
			return true
		}
	}
	return false
}

// Evictions returns how many rooms have left memory, for metrics.
func (h *Hub) Evictions() uint64 { return h.evictions.Load() }

// WindowBytes returns the estimated size of every room's window together,
// for metrics and tests.
func (h *Hub) WindowBytes() int64 { return h.acct.winBytes.Load() }

// runSweep advances the clock every IdleTimeout/sweepsPerIdle, evicting
// the rooms idle since, and trims windows when they are over budget, until
// stop is closed.
func (h *Hub) runSweep(stop <-chan struct{}) {
	t := time.NewTicker(max(h.opt.IdleTimeout/sweepsPerIdle, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			h.sweep()
		case <-h.acct.over:
		}
		if h.acct.winBytes.Load() > h.acct.budget {
			h.trimWindows()
		}
	}
}

// sweep evicts every room unused for sweepsPerIdle sweeps, and every room
// without messages nobody uses.
func (h *Hub) sweep() {
	now := h.clock.Add(1)
	h.mu.Lock()
	defer h.mu.Unlock()
	for name, s := range h.rooms {
		r := s.loaded()
		if r == nil || s.pins.Load() != 0 {
			continue
		}
		if now-s.used.Load() >= sweepsPerIdle {
			h.evictLocked(name, s)
			continue
		}
		r.mu.Lock()
		empty := r.last == 0 && !r.paid
		r.mu.Unlock()
		if empty {
			h.evictLocked(name, s)
		}
	}
}

// trimWindows empties the windows of the coldest rooms until the windows
// together are under seven eighths of the budget, which leaves room to
// grow before the next trim.
func (h *Hub) trimWindows() {
	type entry struct {
		r    *room
		used int64
	}
	h.mu.Lock()
	rooms := make([]entry, 0, len(h.rooms))
	for _, s := range h.rooms {
		if r := s.loaded(); r != nil {
			rooms = append(rooms, entry{r, s.used.Load()})
		}
	}
	h.mu.Unlock()
	slices.SortFunc(rooms, func(a, b entry) int { return cmp.Compare(a.used, b.used) })
	goal := h.acct.budget - h.acct.budget/8
	for _, e := range rooms {
		if h.acct.winBytes.Load() <= goal {
			return
		}
		e.r.trim()
	}
}

// trim empties r's window and its cached pages. Readers of what it held
// are served from the store; the window fills again from the next publish.
func (r *room) trim() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.win = newWindow(r.win.max)
	r.empty, r.latest, r.pages = nil, nil, nil
	r.account()
}

// Admit decides whether the caller may write room's first message (a
// send, or a join that will be logged) by asking allow, the caller's
// creation limit, when the room has no message yet. Only one caller pays
// for a room: concurrent callers wait for its decision, and once it is
// made the room stays in memory (see paid) until its first message, so
// that callers that follow are not charged again for the same room. With
// a shared store another instance may charge once more.
func (h *Hub) Admit(ctx context.Context, room string, allow func(context.Context) error) error {
	s, err := h.pin(ctx, room, true)
	if err != nil {
		return err
	}
	defer h.unpin(s)
	r := s.r
	for {
		r.mu.Lock()
		if r.last > 0 || r.paid {
			r.mu.Unlock()
			return nil
		}
		if c := r.deciding; c != nil {
			r.mu.Unlock()
			select {
			case <-c:
			case <-ctx.Done():
				return ctx.Err()
			}
			continue // paid, or refused: then decide for this caller
		}
		c := make(chan struct{})
		r.deciding = c
		r.mu.Unlock()
		err := allow(ctx)
		r.mu.Lock()
		r.paid = err == nil
		if r.paid {
			r.kept.Store(true)
		}
		r.deciding = nil
		r.mu.Unlock()
		close(c)
		return err
	}
}
