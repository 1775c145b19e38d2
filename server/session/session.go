// Package session keeps who is connected: sessions with unique display names
// and bearer tokens, and presence per room. Presence changes become join and
// leave events, which one goroutine hands to the log in the order they
// happened.
package session

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/parley-chat/parley/shared"
)

// Event is a presence change to log in a room.
type Event struct {
	Room string
	Name string
	Kind shared.Kind // shared.KindJoin or shared.KindLeave
}

// Options configures a Manager. Zero values take the defaults.
type Options struct {
	// TTL is how long a session lives without polling or sending (default 2 min).
	TTL time.Duration
	// Grace is how long a session stays present in a room after its last
	// poll there ended (default shared.PresenceGrace).
	Grace time.Duration
	// MaxSessions bounds live sessions (default 100000).
	MaxSessions int
	// MaxHeldPerSession bounds the polls one session holds at once (default
	// 8); a newer poll beyond it releases the oldest, which answers empty.
	MaxHeldPerSession int
	// MaxHeld bounds the polls held at once by everyone, sessions or not
	// (default 10000); beyond it Hold fails with over_capacity. Polls
	// without a session may take three quarters of it at most: the rest is
	// kept for people who joined, so that anonymous polls (which cost
	// nothing to make) cannot lock them out.
	MaxHeld int
	// MaxHeldPerAddr bounds the polls held at once from one client address
	// (an IPv4 address or IPv6 /64; default 1000, generous for a shared
	// NAT); beyond it Hold fails with rate_limited. Negative: no bound.
	MaxHeldPerAddr int
	// SendRate and SendBurst bound each session's sends (default 5/s, 20).
	SendRate  rate.Limit
	SendBurst int
	// MaxRoomsPerSession bounds the rooms a session is present in on this
	// instance at once (default 16): a poll of one more fails with
	// too_many_rooms until a presence ends (PresenceGrace after its last
	// poll). Every join is a message in its room's log.
	MaxRoomsPerSession int
	// JoinRate and JoinBurst bound how often a session joins rooms (default
	// one every 3 s, burst 10): a poll that would join one more fails with
	// rate_limited. Polls of rooms it is present in are not joins, so
	// going back and forth between a few rooms never meets the limit.
	JoinRate  rate.Limit
	JoinBurst int
	// Store keeps sessions and presence (default: a new MemStore, this
	// process only).
	Store  Store
	Now    func() time.Time
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.TTL <= 0 {
		o.TTL = 2 * time.Minute
	}
	if o.Grace <= 0 {
		o.Grace = shared.PresenceGrace
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = 100_000
	}
	if o.MaxHeldPerSession <= 0 {
		o.MaxHeldPerSession = 8
	}
	if o.MaxHeld <= 0 {
		o.MaxHeld = 10000
	}
	if o.MaxHeldPerAddr == 0 {
		o.MaxHeldPerAddr = 1000
	}
	if o.SendRate <= 0 {
		o.SendRate = 5
	}
	if o.SendBurst <= 0 {
		o.SendBurst = 20
	}
	if o.MaxRoomsPerSession <= 0 {
		o.MaxRoomsPerSession = 16
	}
	if o.JoinRate <= 0 {
		o.JoinRate = rate.Every(3 * time.Second)
	}
	if o.JoinBurst <= 0 {
		o.JoinBurst = 10
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Store == nil {
		o.Store = NewMemStore()
	}
}

// Session is one joined client as this instance knows it: its identity is
// in the Store, its held polls and rate limiter here. Its fields are
// guarded by the Manager.
type Session struct {
	// Token is the bearer token; Name the display name.
	Token string
	Name  string

	hash       string // TokenHash(Token), the Store's key
	lastActive time.Time
	touched    time.Time // when the Store last extended its life
	limiter    *rate.Limiter
	joins      *rate.Limiter
	rooms      map[string]*presence
	held       []*Hold // oldest first
}

// presence is a session's presence in a room as far as this instance's
// polls go: it keeps the Store's lease alive while it lasts.
type presence struct {
	since   time.Time
	held    int
	lastEnd time.Time
}

// Releaser lets go of a held poll; Release must make the poll answer at
// once, and must not block.
type Releaser interface{ Release() }

// ReleaseFunc adapts a function to Releaser.
type ReleaseFunc func()

// Release calls f.
func (f ReleaseFunc) Release() { f() }

// Hold is one held poll in the Manager's registry.
type Hold struct {
	addr  string
	anon  bool
	s     *Session // nil for a poll without a session
	p     *presence
	r     Releaser
	ended bool
}

// Manager owns this instance's view of the sessions and the one registry of
// held polls: the global cap, each session's cap and local presence are all
// counted here, behind one mutex, with no I/O under it. What instances
// share (sessions, names, presence) is in the Store; the Manager calls it
// outside the lock, and presence changes are applied to it in order by
// Flush, which logs the joins and leaves the Store reports, so that
// exactly one instance logs each.
type Manager struct {
	opt   Options
	store Store

	mu       sync.Mutex
	byHash   map[string]*Session
	ops      []op           // presence changes for the Store, in order
	swept    bool           // Sweep ran since the last Flush: expire leases
	signal   chan struct{}  // buffered 1: ops has something
	held     int            // polls held now, by anyone
	heldAnon int            // of which without a session
	heldBy   map[string]int // by client address
}

// op is one presence change waiting for Flush: a lease to make or extend,
// a touch of a session with held polls, or an ended session's leaves.
type op struct {
	lease    Lease
	touch    string // a session hash
	leaveAll string // a name
}

// NewManager returns a Manager over opt.Store (a new MemStore when nil).
func NewManager(opt Options) *Manager {
	opt.setDefaults()
	return &Manager{
		opt:    opt,
		store:  opt.Store,
		byHash: make(map[string]*Session),
		heldBy: make(map[string]int),
		signal: make(chan struct{}, 1),
	}
}

func newToken() string {
	b := make([]byte, 32) // 256 bits
	_, _ = rand.Read(b)   // never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b)
}

func (m *Manager) newSession(token, hash, name string, now time.Time) *Session {
	return &Session{
		Token:      token,
		Name:       name,
		hash:       hash,
		lastActive: now,
		touched:    now,
		limiter:    rate.NewLimiter(m.opt.SendRate, m.opt.SendBurst),
		joins:      rate.NewLimiter(m.opt.JoinRate, m.opt.JoinBurst),
		rooms:      make(map[string]*presence),
	}
}

// Create starts a session for name, which must already be normalised. The
// name must be free on every instance sharing the Store.
func (m *Manager) Create(ctx context.Context, name string) (*Session, error) {
	m.mu.Lock()
	full := len(m.byHash) >= m.opt.MaxSessions
	m.mu.Unlock()
	if full {
		return nil, shared.Errorf(shared.CodeOverCapacity, "too many sessions")
	}
	token := newToken()
	hash := TokenHash(token)
	now := m.opt.Now()
	taken, err := m.store.CreateSession(ctx, Record{Hash: hash, Name: name}, now, m.opt.TTL)
	if err != nil {
		return nil, fmt.Errorf("%w: create session: %w", ErrStore, err)
	}
	if taken {
		return nil, shared.Errorf(shared.CodeNameTaken, "the name %q is taken; choose another", name)
	}
	s := m.newSession(token, hash, name, now)
	m.mu.Lock()
	m.byHash[hash] = s
	m.mu.Unlock()
	return s, nil
}

// NameInUse reports whether a live session, on any instance, holds name
// or one that looks like it (NameKey), so that the textbook's /send_msg/
// cannot post as it.
func (m *Manager) NameInUse(ctx context.Context, name string) (bool, error) {
	taken, err := m.store.NameTaken(ctx, name, m.opt.Now())
	if err != nil {
		return false, fmt.Errorf("%w: name in use: %w", ErrStore, err)
	}
	return taken, nil
}

// Lookup returns the live session with token, or unknown_token. A session
// made by another instance is known here from its first lookup on.
func (m *Manager) Lookup(ctx context.Context, token string) (*Session, error) {
	hash := TokenHash(token)
	now := m.opt.Now()
	name, ok, err := m.store.TouchSession(ctx, hash, now, m.opt.TTL)
	if err != nil {
		return nil, fmt.Errorf("%w: look up session: %w", ErrStore, err)
	}
	m.mu.Lock()
	s := m.byHash[hash]
	if !ok {
		var held []*Hold
		if s != nil {
			held = m.dropLocked(s)
		}
		m.mu.Unlock()
		release(held)
		return nil, shared.Errorf(shared.CodeUnknownToken, "the session is unknown or has expired; join again")
	}
	if s == nil {
		s = m.newSession(token, hash, name, now)
		m.byHash[hash] = s
	}
	s.lastActive, s.touched = now, now
	m.mu.Unlock()
	return s, nil
}

// AllowSend reports whether the session may send now, and if not, how long
// to wait.
func (m *Manager) AllowSend(s *Session) (ok bool, retryAfter time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.opt.Now()
	s.lastActive = now
	r := s.limiter.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// End ends the session at once, on every instance: its name is free, its
// held polls here are released and its leave is logged in every room it
// was present in.
func (m *Manager) End(ctx context.Context, token string) error {
	hash := TokenHash(token)
	name, ok, err := m.store.EndSession(ctx, hash)
	if err != nil {
		return fmt.Errorf("%w: end session: %w", ErrStore, err)
	}
	if !ok {
		return shared.Errorf(shared.CodeUnknownToken, "the session is unknown or has expired")
	}
	m.mu.Lock()
	var held []*Hold
	if s := m.byHash[hash]; s != nil {
		held = m.dropLocked(s)
	}
	m.queueLocked(op{leaveAll: name})
	m.mu.Unlock()
	release(held)
	return nil
}

// dropLocked forgets s here and returns its held polls, to release outside
// the lock. It logs nothing: the Store's leases end on their own.
func (m *Manager) dropLocked(s *Session) []*Hold {
	delete(m.byHash, s.hash)
	clear(s.rooms)
	held := s.held
	s.held = nil
	return held
}

func release(held []*Hold) {
	for _, h := range held {
		h.r.Release()
	}
}

func (m *Manager) queueLocked(o op) {
	m.ops = append(m.ops, o)
	select {
	case m.signal <- struct{}{}:
	default:
	}
}

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
