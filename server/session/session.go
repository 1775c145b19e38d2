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
