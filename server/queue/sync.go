package queue

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/parley-chat/parley/shared"
)

// This file is the hub's side of a store shared by several processes: other
// processes' messages reach a room by Notify (a notification, in order, the
// fast path) or by Sync (a read of the room's position in the store, when a
// notification was out of order or lost). Both go through room.publish or
// room.replace, under the room's lock, like the writer's own messages.

// Notify publishes msgs, messages another process (or this one) stored in
// room at epoch, in seq order, to the room's window and waiters, if the room
// is loaded here. Messages the room already has are skipped. When they do
// not follow the room's last seq, or their epoch is not the room's, nobody
// is woken with them: the room is synced from the store first (Sync). Notify
// does not block on the store; it is meant to be called from a pub/sub
// subscriber's goroutine.
func (h *Hub) Notify(room, epoch string, msgs []shared.Message) {
	r := h.loaded(room)
	if r == nil || len(msgs) == 0 {
		return
	}
	h.closeMu.RLock()
	defer h.closeMu.RUnlock()
	if h.closed {
		return
	}
	ws, d, behind := r.publish(epoch, msgs)
	if d != nil {
		h.fanOut(ws, d)
	}
	if behind {
		h.syncs.mark(r)
	}
}

// Sync makes the hub check room's position in the store soon, if the room
// is loaded, and fill or reset it: see SyncAll.
func (h *Hub) Sync(room string) {
	if r := h.loaded(room); r != nil {
		h.syncs.mark(r)
	}
}

// SyncAll makes the hub check every loaded room's position in the store:
// what a pub/sub subscriber calls after (re)subscribing, since whatever was
// published while it had no subscription is lost. A room behind the store
// in the same epoch gets the missing messages published; a room whose log
// was created anew (another epoch), or whose store is behind what the room
// served, is replaced and its readers are told to reset. The checks run on
// the hub's sync goroutines; SyncAll returns at once.
func (h *Hub) SyncAll() {
	for _, r := range h.loadedRooms() {
		h.syncs.mark(r)
	}
}

// loaded returns the room if it is loaded, without loading it.
func (h *Hub) loaded(name string) *room {
	h.mu.Lock()
	s := h.rooms[name]
	h.mu.Unlock()
	if s == nil {
		return nil
	}
	select {
	case <-s.ready:
		return s.r
	default:
		// Still loading: the load reads the store after this message was
		// stored, or marks the room for a sync when it is done.
		return nil
	}
}

func (h *Hub) loadedRooms() []*room {
	h.mu.Lock()
	defer h.mu.Unlock()
	rooms := make([]*room, 0, len(h.rooms))
	for _, s := range h.rooms {
		select {
		case <-s.ready:
			if s.r != nil {
				rooms = append(rooms, s.r)
			}
		default:
		}
	}
	return rooms
}

// syncWorkers is how many rooms are synced at once: each sync is a round
// trip or two to the store, and after a resubscription every loaded room
// needs one.
const syncWorkers = 4

// runSync starts the sync workers and, with Options.SyncInterval, the
// ticker that checks every room with waiters, so that a lost notification
// delays a message by at most that interval. They stop with h.stop.
func (h *Hub) runSync(ctx context.Context) {
	h.syncers.Add(syncWorkers)
	for range syncWorkers {
		go func() {
			defer h.syncers.Done()
			for {
				r := h.syncs.next()
				if r == nil {
					select {
					case <-h.syncs.wake:
						continue
					case <-h.stop:
						return
					}
				}
				h.syncRoom(ctx, r)
				h.syncs.done(r)
			}
		}()
	}
	if h.opt.SyncInterval <= 0 {
		return
	}
	h.syncers.Add(1)
	go func() {
		defer h.syncers.Done()
		t := time.NewTicker(h.opt.SyncInterval)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-t.C:
				for _, r := range h.loadedRooms() {
					r.mu.Lock()
					waiting := len(r.waiters) > 0
					r.mu.Unlock()
					if waiting {
						h.syncs.mark(r)
					}
				}
			}
		}
	}()
}

// syncRoom brings r up to the store's position. A failure is logged; the
// room is checked again at the next tick (if it has waiters) or resync.
func (h *Hub) syncRoom(ctx context.Context, r *room) {
	if err := h.syncNow(ctx, r); err != nil && ctx.Err() == nil {
		h.opt.Logger.Warn("sync room failed", "room", r.name, "err", err)
	}
}

// syncNow brings r up to the store's position before it returns. Several
// may run at once for one room (a worker and readers): publish skips what
// is already there, and replace only applies to the state it was read for.
func (h *Hub) syncNow(ctx context.Context, r *room) error {
	for range 3 {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		done, err := h.syncOnce(sctx, r)
		cancel()
		if err != nil || done {
			return err
		}
		// The room moved while the store was read: read again.
	}
	h.syncs.mark(r)
	return nil
}

// syncOnce reads the store's state of r once and applies it; done is false
// when r changed meanwhile and must be read again.
func (h *Hub) syncOnce(ctx context.Context, r *room) (done bool, err error) {
	r.mu.Lock()
	epoch, last := r.epoch, r.last
	r.mu.Unlock()
	hist := h.opt.History
	st, msgs, err := h.snapshot(ctx, r.name, last+1, last+uint64(hist), hist)
	if err != nil {
		return false, fmt.Errorf("%w: sync room %q: %w", ErrStore, r.name, err)
	}
	if st.Epoch == epoch && st.Last == last {
		return true, nil
	}
	if st.Epoch == epoch && st.Last > last && len(msgs) > 0 && msgs[0].Seq == last+1 && msgs[len(msgs)-1].Seq == st.Last {
		ws, d, _ := r.publish(epoch, msgs)
		if d != nil {
			h.fanOut(ws, d)
		}
		return true, nil
	}
	if st.Epoch == epoch && st.Last < last {
		// Same epoch, fewer messages: Redis lost acknowledged writes
		// (appendfsync everysec or no, or RDB only) and will reuse their
		// seqs. Readers are reset, which is all that can be done now.
		h.opt.Logger.Error("the store lost messages this instance served; readers are reset",
			"room", r.name, "epoch", epoch, "served", last, "stored", st.Last)
	}
	// Another epoch, a store behind us, or more to fill than the window
	// holds: take the room's newest messages as they are now.
	from := uint64(1)
	if st.Last >= uint64(hist) {
		from = st.Last - uint64(hist) + 1
	}
	st, msgs, err = h.snapshot(ctx, r.name, from, max(st.Last, from), hist)
	if err != nil {
		return false, fmt.Errorf("%w: sync room %q: %w", ErrStore, r.name, err)
	}
	ws, held, reset, ok := r.replace(epoch, last, st, msgs)
	if !ok {
		return false, nil
	}
	if st.Epoch != epoch {
		h.opt.Logger.Warn("room's log was created anew in the store; readers are reset", "room", r.name, "old", epoch, "new", st.Epoch)
	}
	if !reset {
		// Same epoch, cursors still valid: each reader re-polls and
		// catches up from the store, with gap when it must.
		for _, w := range ws {
			w.expire()
		}
		return true, nil
	}
	pages := make(map[int]*Page)
	for _, w := range ws {
		p := pages[w.limit]
		if p == nil {
			newest := held[max(0, len(held)-w.limit):]
			p = newPage(r, st.Epoch, newest, st.Last, false, true)
			pages[w.limit] = p
		}
		w.fire(p)
	}
	return true, nil
}

// snapshot reads room's state and messages from the store, together when
// the store is a Snapshotter.
func (h *Hub) snapshot(ctx context.Context, room string, from, to uint64, limit int) (RoomState, []shared.Message, error) {
	if s, ok := h.store.(Snapshotter); ok {
		return s.Snapshot(ctx, room, from, to, limit)
	}
	st, err := h.store.LoadRoom(ctx, room)
	if err != nil {
		return st, nil, err
	}
	msgs, err := h.store.Range(ctx, room, from, min(to, st.Last), limit)
	return st, msgs, err
}

// syncQueue is the set of rooms waiting for a sync. A room is synced by one
// worker at a time; marked again while being synced, it is queued again
// when that sync ends, so a notification that arrives mid-sync is not lost.
type syncQueue struct {
	wake chan struct{} // buffered 1: work was queued

	mu    sync.Mutex
	queue []*room
	state map[*room]syncState
}

type syncState uint8

const (
	syncQueued syncState = iota + 1
	syncRunning
	syncRunningDirty
)

func newSyncQueue() *syncQueue {
	return &syncQueue{wake: make(chan struct{}, 1), state: make(map[*room]syncState)}
}

func (q *syncQueue) mark(r *room) {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch q.state[r] {
	case 0:
		q.state[r] = syncQueued
		q.queue = append(q.queue, r)
		q.signal()
	case syncRunning:
		q.state[r] = syncRunningDirty
	}
}

func (q *syncQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// next takes a queued room, nil when there is none.
func (q *syncQueue) next() *room {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queue) == 0 {
		return nil
	}
	r := q.queue[0]
	q.queue[0] = nil
	q.queue = q.queue[1:]
	q.state[r] = syncRunning
	if len(q.queue) > 0 {
		q.signal() // let another worker help
	}
	return r
}

func (q *syncQueue) done(r *room) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.state[r] == syncRunningDirty {
		q.state[r] = syncQueued
		q.queue = append(q.queue, r)
		q.signal()
		return
	}
	delete(q.state, r)
}
