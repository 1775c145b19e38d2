package session

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/parley-chat/parley/shared"
)

// Sweep ends, here, presence that outlived the grace period and sessions
// that outlived the TTL, as of now, and queues for Flush the renewal of
// every lease this instance keeps alive, and the expiry of the Store's
// leases that nobody renewed: each such leave is logged by one instance.
// Run calls it periodically; tests call it with a fake clock.
func (m *Manager) Sweep(now time.Time) {
	m.mu.Lock()
	for _, s := range m.byHash {
		held := len(s.held)
		if held == 0 && now.Sub(s.lastActive) > m.opt.TTL {
			m.opt.Logger.Debug("session idle here", "name", s.Name)
			m.dropLocked(s)
			continue
		}
		if held > 0 && now.Sub(s.touched) > m.opt.TTL/4 {
			// A held poll is activity the Store has not seen.
			s.touched = now
			m.queueLocked(op{touch: s.hash})
		}
		for _, room := range sortedKeys(s.rooms) {
			p := s.rooms[room]
			if p.held == 0 && now.Sub(p.lastEnd) > m.opt.Grace {
				delete(s.rooms, room)
				continue
			}
			end := p.lastEnd
			if p.held > 0 {
				end = now
			}
			// A renewal names the session: if it ended elsewhere
			// meanwhile, its presence is not brought back.
			m.queueLocked(op{lease: Lease{Room: room, Name: s.Name, Hash: s.hash, Since: p.since, Until: end.Add(m.opt.Grace)}})
		}
	}
	m.swept = true
	m.mu.Unlock()
}

// Members returns who is present in room, on any instance, longest
// present first.
func (m *Manager) Members(ctx context.Context, room string) ([]shared.Member, error) {
	ms, err := m.store.Members(ctx, room)
	if err != nil {
		return nil, fmt.Errorf("%w: members of %q: %w", ErrStore, room, err)
	}
	return ms, nil
}

// Count returns the number of sessions this instance knows.
func (m *Manager) Count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.byHash)
}

// take returns and clears the pending ops, and whether a Sweep asked for
// the leases to be expired.
func (m *Manager) take() ([]op, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ops, swept := m.ops, m.swept
	m.ops, m.swept = nil, false
	return ops, swept
}

// maxLeaseBatch bounds the leases of one Store.Present call.
const maxLeaseBatch = 500

// Run sweeps every interval and flushes presence changes to the Store and
// their events to emit, in order, until ctx is done. Being the only caller
// of emit, it guarantees that a leave never overtakes the join before it.
func (m *Manager) Run(ctx context.Context, interval time.Duration, emit func(context.Context, Event) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.Sweep(m.opt.Now())
		case <-m.signal:
		}
		m.Flush(ctx, emit)
	}
}

// Flush applies the pending presence changes to the Store, in order, and
// hands the joins and leaves it reports to emit; after a Sweep it also
// expires the leases nobody renewed. Only one goroutine may call it at a
// time (Run, or a test in Run's place). A change the Store fails is
// logged and dropped: the next Sweep renews every live lease, and a
// presence the Store did not have is then joined.
func (m *Manager) Flush(ctx context.Context, emit func(context.Context, Event) error) {
	ops, swept := m.take()
	emitAll := func(kind shared.Kind, ps []Presence) {
		for _, p := range ps {
			e := Event{Room: p.Room, Name: p.Name, Kind: kind}
			if err := emit(ctx, e); err != nil {
				m.opt.Logger.Warn("presence event not logged", "room", e.Room, "name", e.Name, "kind", e.Kind, "err", err)
			}
		}
	}
	for len(ops) > 0 {
		o := ops[0]
		switch {
		case o.leaveAll != "":
			ops = ops[1:]
			rooms, err := m.store.LeaveAll(ctx, o.leaveAll)
			if err != nil {
				m.opt.Logger.Warn("presence not ended", "name", o.leaveAll, "err", err)
			}
			ps := make([]Presence, len(rooms))
			for i, r := range rooms {
				ps[i] = Presence{Room: r, Name: o.leaveAll}
			}
			emitAll(shared.KindLeave, ps)
		case o.touch != "":
			ops = ops[1:]
			if _, _, err := m.store.TouchSession(ctx, o.touch, m.opt.Now(), m.opt.TTL); err != nil {
				m.opt.Logger.Warn("session not renewed", "err", err)
			}
		default:
			// Consecutive leases go to the Store together, up to a bound
			// that keeps one Redis script short.
			n := 1
			for n < len(ops) && n < maxLeaseBatch && ops[n].leaveAll == "" && ops[n].touch == "" {
				n++
			}
			leases := make([]Lease, n)
			for i := range leases {
				leases[i] = ops[i].lease
			}
			ops = ops[n:]
			joined, err := m.store.Present(ctx, leases)
			if err != nil {
				m.opt.Logger.Warn("presence not renewed", "leases", len(leases), "err", err)
				continue
			}
			var ps []Presence
			for i, j := range joined {
				if j {
					ps = append(ps, Presence{Room: leases[i].Room, Name: leases[i].Name})
				}
			}
			emitAll(shared.KindJoin, ps)
		}
	}
	if swept {
		ps, err := m.store.Expire(ctx, m.opt.Now())
		if err != nil {
			m.opt.Logger.Warn("presence not expired", "err", err)
		}
		emitAll(shared.KindLeave, ps)
	}
}

func sortedKeys[V any](mp map[string]V) []string {
	keys := make([]string, 0, len(mp))
	for k := range mp {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
