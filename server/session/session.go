// Package session keeps who is connected: sessions with unique display names
// and bearer tokens, and presence per room. Presence changes become join and
// leave events, which one goroutine hands to the log in the order they
// happened.
package session

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
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
	// (default 10000); beyond it Hold fails with over_capacity.
	MaxHeld int
	// SendRate and SendBurst bound each session's sends (default 5/s, 20).
	SendRate  rate.Limit
	SendBurst int
	Now       func() time.Time
	Logger    *slog.Logger
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
	if o.SendRate <= 0 {
		o.SendRate = 5
	}
	if o.SendBurst <= 0 {
		o.SendBurst = 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Session is one joined client. Its fields are guarded by the Manager.
type Session struct {
	Token string
	Name  string

	lastActive time.Time
	limiter    *rate.Limiter
	rooms      map[string]*presence
	held       []*Hold // oldest first
}

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
	s     *Session // nil for a poll without a session
	p     *presence
	r     Releaser
	ended bool
}

// Manager owns every session, presence, and the one registry of held polls:
// the global cap, each session's cap and presence are all counted here. All
// state is behind one mutex: the work under it is a few map operations,
// never I/O.
type Manager struct {
	opt Options

	mu      sync.Mutex
	byToken map[string]*Session
	byName  map[string]*Session // key: nameKey(name)
	present map[string]map[*Session]*presence
	events  []Event       // presence changes not yet handed to the log
	signal  chan struct{} // buffered 1: events has something
	held    int           // polls held now, by anyone
}

// NewManager returns an empty Manager.
func NewManager(opt Options) *Manager {
	opt.setDefaults()
	return &Manager{
		opt:     opt,
		byToken: make(map[string]*Session),
		byName:  make(map[string]*Session),
		present: make(map[string]map[*Session]*presence),
		signal:  make(chan struct{}, 1),
	}
}

// nameKey makes names unique by how they look, so neither "Alice" nor a
// Cyrillic "аlice" can pose as "alice" (shared.NameKey).
func nameKey(name string) string { return shared.NameKey(name) }

func newToken() string {
	b := make([]byte, 32) // 256 bits
	_, _ = rand.Read(b)   // never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b)
}

// Create starts a session for name, which must already be normalised.
func (m *Manager) Create(name string) (*Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, taken := m.byName[nameKey(name)]; taken {
		return nil, shared.Errorf(shared.CodeNameTaken, "the name %q is taken; choose another", name)
	}
	if len(m.byToken) >= m.opt.MaxSessions {
		return nil, shared.Errorf(shared.CodeOverCapacity, "too many sessions")
	}
	s := &Session{
		Token:      newToken(),
		Name:       name,
		lastActive: m.opt.Now(),
		limiter:    rate.NewLimiter(m.opt.SendRate, m.opt.SendBurst),
		rooms:      make(map[string]*presence),
	}
	m.byToken[s.Token] = s
	m.byName[nameKey(name)] = s
	return s, nil
}

// NameInUse reports whether a live session holds name or one that looks
// like it (nameKey), so that the textbook's /send_msg/ cannot post as it.
func (m *Manager) NameInUse(name string) bool {
	key := nameKey(name) // outside the lock: the skeleton is the costly part
	m.mu.Lock()
	defer m.mu.Unlock()
	_, taken := m.byName[key]
	return taken
}

// Lookup returns the live session with token, or unknown_token.
func (m *Manager) Lookup(token string) (*Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.byToken[token]
	if s == nil {
		return nil, shared.Errorf(shared.CodeUnknownToken, "the session is unknown or has expired; join again")
	}
	s.lastActive = m.opt.Now()
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

// End ends the session at once: its held polls are released and its leave
// is logged in every room it was present in.
func (m *Manager) End(token string) error {
	m.mu.Lock()
	s := m.byToken[token]
	if s == nil {
		m.mu.Unlock()
		return shared.Errorf(shared.CodeUnknownToken, "the session is unknown or has expired")
	}
	held := m.endLocked(s)
	m.mu.Unlock()
	for _, h := range held {
		h.r.Release()
	}
	return nil
}

func (m *Manager) endLocked(s *Session) []*Hold {
	delete(m.byToken, s.Token)
	delete(m.byName, nameKey(s.Name))
	for _, room := range sortedKeys(s.rooms) {
		m.leaveLocked(s, room)
	}
	held := s.held
	s.held = nil
	return held
}

func (m *Manager) leaveLocked(s *Session, room string) {
	delete(s.rooms, room)
	if ps := m.present[room]; ps != nil {
		delete(ps, s)
		if len(ps) == 0 {
			delete(m.present, room)
		}
	}
	m.emitLocked(Event{Room: room, Name: s.Name, Kind: shared.KindLeave})
}

func (m *Manager) emitLocked(e Event) {
	m.events = append(m.events, e)
	select {
	case m.signal <- struct{}{}:
	default:
	}
}

// Hold registers a poll that may wait. It fails with over_capacity when
// MaxHeld polls are held. With a session (s may be nil) it also keeps s
// present in room, logging its join if it was not, and when s holds more
// than MaxHeldPerSession polls it releases the oldest (outside the lock).
// Done must be called when the poll ends.
func (m *Manager) Hold(s *Session, room string, r Releaser) (*Hold, error) {
	m.mu.Lock()
	if m.held >= m.opt.MaxHeld {
		m.mu.Unlock()
		return nil, shared.Errorf(shared.CodeOverCapacity, "too many clients are waiting; retry shortly")
	}
	m.held++
	h := &Hold{s: s, r: r}
	if s == nil || m.byToken[s.Token] != s {
		// No session, or it ended between lookup and now: count the poll
		// but track no presence.
		m.mu.Unlock()
		h.s = nil
		return h, nil
	}
	p := m.joinLocked(s, room)
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

// joinLocked makes s present in room, logging its join if it was not.
func (m *Manager) joinLocked(s *Session, room string) *presence {
	now := m.opt.Now()
	s.lastActive = now
	p := s.rooms[room]
	if p == nil {
		p = &presence{since: now, lastEnd: now}
		s.rooms[room] = p
		if m.present[room] == nil {
			m.present[room] = make(map[*Session]*presence)
		}
		m.present[room][s] = p
		m.emitLocked(Event{Room: room, Name: s.Name, Kind: shared.KindJoin})
	}
	return p
}

// Seen records a poll of s in room that did not wait: s is present there
// for the grace period from now, as after a held poll ends.
func (m *Manager) Seen(s *Session, room string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byToken[s.Token] != s {
		return
	}
	p := m.joinLocked(s, room)
	p.lastEnd = m.opt.Now()
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

// Sweep ends presence that outlived the grace period and sessions that
// outlived the TTL, as of now. Run calls it periodically; tests call it with
// a fake clock.
func (m *Manager) Sweep(now time.Time) {
	m.mu.Lock()
	var released []*Hold
	for _, s := range m.byToken {
		held := 0
		for _, p := range s.rooms {
			held += p.held
		}
		if held == 0 && now.Sub(s.lastActive) > m.opt.TTL {
			m.opt.Logger.Info("session expired", "name", s.Name)
			released = append(released, m.endLocked(s)...)
			continue
		}
		for _, room := range sortedKeys(s.rooms) {
			if p := s.rooms[room]; p.held == 0 && now.Sub(p.lastEnd) > m.opt.Grace {
				m.leaveLocked(s, room)
			}
		}
	}
	m.mu.Unlock()
	for _, h := range released {
		h.r.Release()
	}
}

// Members returns who is present in room, longest present first.
func (m *Manager) Members(room string) []shared.Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]shared.Member, 0, len(m.present[room]))
	for s, p := range m.present[room] {
		out = append(out, shared.Member{Name: s.Name, Since: p.since.UTC()})
	}
	slices.SortFunc(out, func(a, b shared.Member) int {
		return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// Count returns the number of live sessions.
func (m *Manager) Count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.byToken)
}

// takeEvents returns and clears the pending events.
func (m *Manager) takeEvents() []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	ev := m.events
	m.events = nil
	return ev
}

// Run sweeps every interval and flushes presence events to emit, in order,
// until ctx is done. Being the only caller of emit, it guarantees that a
// leave never overtakes the join before it.
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

// Flush hands the pending presence events to emit, in order. Only one
// goroutine may call it at a time (Run, or a test in Run's place).
func (m *Manager) Flush(ctx context.Context, emit func(context.Context, Event) error) {
	for _, e := range m.takeEvents() {
		if err := emit(ctx, e); err != nil {
			m.opt.Logger.Warn("presence event not logged", "room", e.Room, "name", e.Name, "kind", e.Kind, "err", err)
		}
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
