package session

import (
	"slices"
	"time"

	"github.com/parley-chat/parley/shared"
)

// Hold registers a poll that may wait, from the client address addr ("" if
// unknown). It fails with over_capacity when MaxHeld polls are held (three
// quarters of it for polls without a session), and with rate_limited when
// addr holds MaxHeldPerAddr. With a session (s may be nil) it also keeps s
// present in room, logging its join if it was not, and when s holds more
// than MaxHeldPerSession polls it releases the oldest (outside the lock).
// Done must be called when the poll ends.
func (m *Manager) Hold(s *Session, room, addr string, r Releaser) (*Hold, error) {
	m.mu.Lock()
	live := s != nil && m.byHash[s.hash] == s
	switch {
	case m.held >= m.opt.MaxHeld || !live && m.heldAnon >= m.opt.MaxHeld-m.opt.MaxHeld/4:
		m.mu.Unlock()
		return nil, shared.Errorf(shared.CodeOverCapacity, "too many clients are waiting; retry shortly")
	case addr != "" && m.opt.MaxHeldPerAddr > 0 && m.heldBy[addr] >= m.opt.MaxHeldPerAddr:
		m.mu.Unlock()
		return nil, shared.Errorf(shared.CodeRateLimited, "too many polls held from this address")
	}
	var p *presence
	if live {
		var err error
		if p, err = m.joinLocked(s, room); err != nil {
			m.mu.Unlock()
			return nil, err
		}
	}
	m.held++
	h := &Hold{s: s, r: r, addr: addr, anon: !live}
	if addr != "" {
		m.heldBy[addr]++
	}
	if !live {
		// No session, or it ended between lookup and now: count the poll
		// but track no presence.
		m.heldAnon++
		m.mu.Unlock()
		h.s = nil
		return h, nil
	}
	p.held++
	h.p = p
	s.held = append(s.held, h)
	var evicted *Hold
	if len(s.held) > m.opt.MaxHeldPerSession {
		evicted = s.held[0]
		s.held = s.held[1:]
	}
	m.mu.Unlock()
	if evicted != nil {
		evicted.r.Release()
	}
	return h, nil
}

// joinLocked makes s present in room here, and asks the Store to make it
// present (Flush logs its join if it was not present on any instance). A
// new presence is refused beyond MaxRoomsPerSession and JoinRate.
func (m *Manager) joinLocked(s *Session, room string) (*presence, error) {
	now := m.opt.Now()
	s.lastActive = now
	p := s.rooms[room]
	if p != nil {
		return p, nil
	}
	if len(s.rooms) >= m.opt.MaxRoomsPerSession {
		err := shared.Errorf(shared.CodeTooManyRooms, "present in %d rooms already; stop polling one first", len(s.rooms))
		if d, ok := m.firstLeaveLocked(s, now); ok {
			return nil, RetryError{err, d}
		}
		return nil, err
	}
	r := s.joins.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return nil, RetryError{shared.Errorf(shared.CodeRateLimited, "joining rooms too fast; retry shortly"), d}
	}
	p = &presence{since: now, lastEnd: now}
	s.rooms[room] = p
	// No Hash: the session was live at its lookup just now, and an End
	// queued after this join must find it joined, so that the log shows
	// the join and then the leave.
	m.queueLocked(op{lease: Lease{Room: room, Name: s.Name, Since: now, Until: now.Add(m.opt.Grace)}})
	return p, nil
}

// firstLeaveLocked returns how long until s's first presence without a
// held poll ends (the next Sweep after it drops it); ok is false when every
// presence has a held poll.
func (m *Manager) firstLeaveLocked(s *Session, now time.Time) (d time.Duration, ok bool) {
	for _, p := range s.rooms {
		if p.held > 0 {
			continue
		}
		left := max(p.lastEnd.Add(m.opt.Grace).Sub(now), 0)
		if !ok || left < d {
			d, ok = left, true
		}
	}
	return d, ok
}

// RetryError is a refusal that can be retried after After.
type RetryError struct {
	Err   *shared.Error
	After time.Duration
}

func (e RetryError) Error() string { return e.Err.Error() }

// Unwrap returns the error to answer.
func (e RetryError) Unwrap() error { return e.Err }

// RetryAfter is when to retry, for the HTTP layer's Retry-After.
func (e RetryError) RetryAfter() time.Duration { return e.After }

// Seen records a poll of s in room that did not wait: s is present there
// for the grace period from now, as after a held poll ends. It fails as
// Hold does when that would be one room too many or too soon.
func (m *Manager) Seen(s *Session, room string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byHash[s.hash] != s {
		return nil
	}
	p, err := m.joinLocked(s, room)
	if err != nil {
		return err
	}
	p.lastEnd = m.opt.Now()
	return nil
}

// Present reports whether s is present in room on this instance: whether
// a poll of room would be a join.
func (m *Manager) Present(s *Session, room string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return s.rooms[room] != nil
}

// Done ends h; calling it again does nothing.
func (m *Manager) Done(h *Hold) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if h.ended {
		return
	}
	h.ended = true
	m.held--
	if h.addr != "" {
		if m.heldBy[h.addr]--; m.heldBy[h.addr] == 0 {
			delete(m.heldBy, h.addr)
		}
	}
	if h.anon {
		m.heldAnon--
	}
	if h.s == nil {
		return
	}
	now := m.opt.Now()
	h.s.lastActive = now
	h.s.held = slices.DeleteFunc(h.s.held, func(x *Hold) bool { return x == h })
	h.p.held--
	h.p.lastEnd = now
}

// Held returns the number of polls held now.
func (m *Manager) Held() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.held
}
