package session

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/parley-chat/parley/shared"
)

// Store keeps what every instance must agree on: sessions (by the hash of
// their token, never the token), the names they hold, and who is present
// in which room. The Manager keeps the rest (held polls, rate limiters)
// in memory. Implementations: MemStore here, boltstore's for the embedded
// store (persistent), redisstore's for several instances. Every method is
// safe for concurrent use by any number of processes sharing the store.
type Store interface {
	// CreateSession stores rec, whose session lives ttl from now unless
	// touched, unless a live session holds a name with the same NameKey:
	// then it stores nothing and reports taken. Two concurrent creations
	// of one name: exactly one succeeds.
	CreateSession(ctx context.Context, rec Record, now time.Time, ttl time.Duration) (taken bool, err error)
	// TouchSession returns the name of the live session whose token hashes
	// to hash and makes it live ttl from now; ok is false when there is no
	// such session (never was, ended, or expired).
	TouchSession(ctx context.Context, hash string, now time.Time, ttl time.Duration) (name string, ok bool, err error)
	// NameTaken reports whether a live session holds a name with the same
	// NameKey as name.
	NameTaken(ctx context.Context, name string, now time.Time) (bool, error)
	// EndSession removes the session and frees its name at once; ok is
	// false when there was no such session. Its presence is left to
	// LeaveAll, which the Manager calls in order with its presence events.
	EndSession(ctx context.Context, hash string) (name string, ok bool, err error)
	// Present makes each lease's name present in its room until at least
	// Until, unless the lease names a session (Hash) that no longer
	// exists. joined[i] is true when the name was not present there: then
	// its presence starts at Since, and the caller logs the join. Of
	// several processes making one name present at once, exactly one is
	// told joined.
	Present(ctx context.Context, leases []Lease) (joined []bool, err error)
	// LeaveAll removes name's presence from every room and returns the
	// rooms it was present in (the caller logs those leaves).
	LeaveAll(ctx context.Context, name string) (rooms []string, err error)
	// Expire removes every presence whose lease ended before now and
	// returns them; each is returned to exactly one caller across
	// processes, so exactly one instance logs each leave.
	Expire(ctx context.Context, now time.Time) ([]Presence, error)
	// Members lists who is present in room, longest present first.
	Members(ctx context.Context, room string) ([]shared.Member, error)
}

// Record is a session as stored.
type Record struct {
	// Hash is TokenHash of the session's token.
	Hash string
	Name string
}

// Lease keeps Name present in Room until Until; Since is when its
// presence started, used when it was not present. Hash, when set, is the
// session's token hash: a lease of a session that no longer exists (ended
// or expired, maybe on another instance) is not made, so an instance that
// still holds the session's state cannot bring it back to the room.
type Lease struct {
	Room, Name   string
	Hash         string
	Since, Until time.Time
}

// Presence is one name present in one room.
type Presence struct {
	Room, Name string
}

// ErrStore wraps every failure of a Store, so that the HTTP layer answers
// 503 unavailable instead of 500.
var ErrStore = errors.New("session: store failed")

// TokenHash is what stores keep of a token: its SHA-256, in hex. Tokens are
// 256 random bits, so a plain hash is enough: a stolen store cannot be
// turned back into tokens.
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// NameKey makes names unique by how they look, so neither "Alice" nor a
// Cyrillic "аlice" can pose as "alice" (shared.NameKey: the Unicode
// confusables skeleton).
func NameKey(name string) string { return shared.NameKey(name) }

var _ Store = (*MemStore)(nil)

// MemStore is a Store in this process's memory: for a single instance
// whose sessions need not survive a restart, and as the base of the bolt
// store's, which restores it from its file with Restore.
type MemStore struct {
	mu       sync.Mutex
	sessions map[string]*memSession // by hash
	names    map[string]string      // NameKey → hash
	rooms    map[string]map[string]*memPresence
	byName   map[string]map[string]bool // name → rooms it is present in
}

type memSession struct {
	name    string
	expires time.Time
}

type memPresence struct {
	since, until time.Time
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore {
	return &MemStore{
		sessions: make(map[string]*memSession),
		names:    make(map[string]string),
		rooms:    make(map[string]map[string]*memPresence),
		byName:   make(map[string]map[string]bool),
	}
}

// live returns the session with hash if it has not expired by now, and
// forgets it if it has.
func (s *MemStore) live(hash string, now time.Time) *memSession {
	ss := s.sessions[hash]
	if ss == nil {
		return nil
	}
	if !now.Before(ss.expires) {
		s.drop(hash)
		return nil
	}
	return ss
}

func (s *MemStore) drop(hash string) {
	ss := s.sessions[hash]
	if ss == nil {
		return
	}
	delete(s.sessions, hash)
	if s.names[NameKey(ss.name)] == hash {
		delete(s.names, NameKey(ss.name))
	}
}

// CreateSession implements Store.
func (s *MemStore) CreateSession(_ context.Context, rec Record, now time.Time, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h, ok := s.names[NameKey(rec.Name)]; ok && s.live(h, now) != nil {
		return true, nil
	}
	s.sessions[rec.Hash] = &memSession{name: rec.Name, expires: now.Add(ttl)}
	s.names[NameKey(rec.Name)] = rec.Hash
	return false, nil
}

// NameTaken implements Store.
func (s *MemStore) NameTaken(_ context.Context, name string, now time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.names[NameKey(name)]
	return ok && s.live(h, now) != nil, nil
}

// Restore puts back a session read from a file, live until expires, unless
// its name is held by another.
func (s *MemStore) Restore(rec Record, expires time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.names[NameKey(rec.Name)]; ok {
		return
	}
	s.sessions[rec.Hash] = &memSession{name: rec.Name, expires: expires}
	s.names[NameKey(rec.Name)] = rec.Hash
}

// DropExpired forgets the sessions that expired by now and returns their
// hashes, so that a persistent store built on MemStore can delete them too.
func (s *MemStore) DropExpired(now time.Time) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for hash, ss := range s.sessions {
		if !now.Before(ss.expires) {
			out = append(out, hash)
		}
	}
	for _, hash := range out {
		s.drop(hash)
	}
	return out
}

// TouchSession implements Store.
func (s *MemStore) TouchSession(_ context.Context, hash string, now time.Time, ttl time.Duration) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.live(hash, now)
	if ss == nil {
		return "", false, nil
	}
	ss.expires = now.Add(ttl)
	return ss.name, true, nil
}

// EndSession implements Store.
func (s *MemStore) EndSession(_ context.Context, hash string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.sessions[hash]
	if ss == nil {
		return "", false, nil
	}
	s.drop(hash)
	return ss.name, true, nil
}

// Present implements Store.
func (s *MemStore) Present(_ context.Context, leases []Lease) ([]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	joined := make([]bool, len(leases))
	for i, l := range leases {
		if l.Hash != "" && s.sessions[l.Hash] == nil {
			continue // the session is gone
		}
		ps := s.rooms[l.Room]
		if ps == nil {
			ps = make(map[string]*memPresence)
			s.rooms[l.Room] = ps
		}
		p := ps[l.Name]
		if p == nil {
			p = &memPresence{since: l.Since, until: l.Until}
			ps[l.Name] = p
			if s.byName[l.Name] == nil {
				s.byName[l.Name] = make(map[string]bool)
			}
			s.byName[l.Name][l.Room] = true
			joined[i] = true
		}
		if l.Until.After(p.until) {
			p.until = l.Until
		}
	}
	return joined, nil
}

func (s *MemStore) leave(room, name string) {
	if ps := s.rooms[room]; ps != nil {
		delete(ps, name)
		if len(ps) == 0 {
			delete(s.rooms, room)
		}
	}
	if rs := s.byName[name]; rs != nil {
		delete(rs, room)
		if len(rs) == 0 {
			delete(s.byName, name)
		}
	}
}

// Remove takes each presence away, without reporting anything: for a
// persistent store built on MemStore that failed to record them.
func (s *MemStore) Remove(ps []Presence) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range ps {
		s.leave(p.Room, p.Name)
	}
}

// LeaveAll implements Store.
func (s *MemStore) LeaveAll(_ context.Context, name string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rooms := sortedKeys(s.byName[name])
	for _, room := range rooms {
		s.leave(room, name)
	}
	return rooms, nil
}

// Expire implements Store.
func (s *MemStore) Expire(_ context.Context, now time.Time) ([]Presence, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Presence
	for _, room := range sortedKeys(s.rooms) {
		ps := s.rooms[room]
		for _, name := range sortedKeys(ps) {
			if ps[name].until.Before(now) {
				out = append(out, Presence{Room: room, Name: name})
			}
		}
	}
	for _, p := range out {
		s.leave(p.Room, p.Name)
	}
	return out, nil
}

// Members implements Store.
func (s *MemStore) Members(_ context.Context, room string) ([]shared.Member, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]shared.Member, 0, len(s.rooms[room]))
	for name, p := range s.rooms[room] {
		out = append(out, shared.Member{Name: name, Since: p.since.UTC()})
	}
	SortMembers(out)
	return out, nil
}

// SortMembers orders members longest present first, then by name.
func SortMembers(ms []shared.Member) {
	slices.SortFunc(ms, func(a, b shared.Member) int {
		return cmp.Or(a.Since.Compare(b.Since), cmp.Compare(a.Name, b.Name))
	})
}
