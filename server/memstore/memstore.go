// Package memstore is a Store that keeps rooms in memory only: for tests and
// throwaway runs. Every start is a new epoch, so clients of a previous run are
// told to reset rather than trust cursors that no longer mean anything.
package memstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"sync"

	"github.com/parley-chat/parley/server/queue"
	"github.com/parley-chat/parley/shared"
)

var _ queue.Store = (*Store)(nil)

// DefaultRetain is how many messages a room keeps when New is given 0.
const DefaultRetain = 100_000

// Store is an in-memory queue.Store. Each room keeps its newest retain
// messages; older ones are dropped, which readers see as a gap.
type Store struct {
	retain int
	// incarnation gives the rooms not created yet their epoch.
	incarnation string

	mu    sync.Mutex
	rooms map[string]*roomLog
}

type roomLog struct {
	epoch string
	msgs  []shared.Message // dense: msgs[i].Seq == msgs[0].Seq+i
	last  uint64
	ids   map[string]uint64 // author+"\x00"+client_msg_id → seq
}

// New returns an empty Store keeping retain messages per room.
func New(retain int) *Store {
	if retain <= 0 {
		retain = DefaultRetain
	}
	return &Store{retain: retain, incarnation: NewEpoch(), rooms: make(map[string]*roomLog)}
}

// NewEpoch returns a random epoch string, unique across starts.
func NewEpoch() string {
	b := make([]byte, 9)
	_, _ = rand.Read(b) // never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b)
}

// IDKey is the idempotency key of a message: client ids are only unique per
// author, so two people choosing the same id never collide.
func IDKey(m shared.Message) string { return m.Author + "\x00" + m.ClientMsgID }

func (s *Store) get(room string) *roomLog {
	l := s.rooms[room]
	if l == nil {
		l = &roomLog{epoch: s.pendingEpoch(room), ids: make(map[string]uint64)}
		s.rooms[room] = l
	}
	return l
}

// pendingEpoch is the epoch of a room not created yet: LoadRoom reports it
// and the first append creates the room with it, so reads create nothing
// and a cursor taken before the first message stays valid.
func (s *Store) pendingEpoch(room string) string {
	sum := sha256.Sum256([]byte(s.incarnation + "\x00" + room))
	return hex.EncodeToString(sum[:8])
}

// Rooms returns how many rooms the store holds, for tests.
func (s *Store) Rooms() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rooms)
}

// LoadRoom implements queue.Store. It creates nothing.
func (s *Store) LoadRoom(_ context.Context, room string) (queue.RoomState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.rooms[room]
	if l == nil {
		return queue.RoomState{Epoch: s.pendingEpoch(room), First: 1}, nil
	}
	first := l.last + 1
	if len(l.msgs) > 0 {
		first = l.msgs[0].Seq
	}
	return queue.RoomState{Epoch: l.epoch, First: first, Last: l.last}, nil
}

// Append implements queue.Store.
func (s *Store) Append(_ context.Context, msgs []shared.Message) ([]queue.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]queue.Result, len(msgs))
	for i, m := range msgs {
		l := s.get(m.Room)
		if m.ClientMsgID != "" {
			if seq, ok := l.ids[IDKey(m)]; ok {
				if orig, ok := l.at(seq); ok {
					out[i] = queue.Result{Message: orig, Duplicate: true}
					continue
				}
			}
		}
		l.last++
		m.Seq = l.last
		l.msgs = append(l.msgs, m)
		if m.ClientMsgID != "" {
			l.ids[IDKey(m)] = m.Seq
		}
		if len(l.msgs) > 2*s.retain {
			drop := len(l.msgs) - s.retain
			for _, old := range l.msgs[:drop] {
				if old.ClientMsgID != "" {
					delete(l.ids, IDKey(old))
				}
			}
			l.msgs = append([]shared.Message(nil), l.msgs[drop:]...)
		}
		out[i] = queue.Result{Message: m}
	}
	return out, nil
}

func (l *roomLog) at(seq uint64) (shared.Message, bool) {
	if len(l.msgs) == 0 || seq < l.msgs[0].Seq || seq > l.last {
		return shared.Message{}, false
	}
	return l.msgs[seq-l.msgs[0].Seq], true
}

// Range implements queue.Store.
func (s *Store) Range(_ context.Context, room string, from, to uint64, limit int) ([]shared.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.rooms[room]
	if l == nil || len(l.msgs) == 0 || limit <= 0 {
		return nil, nil
	}
	// Only the newest retain count, even if more are still in the slice.
	held := l.msgs
	if len(held) > s.retain {
		held = held[len(held)-s.retain:]
	}
	lo, hi := max(from, held[0].Seq), min(to, l.last)
	if lo > hi {
		return nil, nil
	}
	hi = min(hi, lo+uint64(limit)-1)
	base := held[0].Seq
	return append([]shared.Message(nil), held[lo-base:hi-base+1]...), nil
}

// Close implements queue.Store.
func (s *Store) Close() error { return nil }
