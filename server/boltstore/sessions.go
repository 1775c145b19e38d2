package boltstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/parley-chat/parley/server/session"
	"github.com/parley-chat/parley/shared"
)

var _ session.Store = (*Sessions)(nil)

// Sessions layout: bucket "sessions" (token hash → name) and bucket
// "presence" (room NUL name → since, 8-byte big-endian Unix ms). Only the
// SHA-256 of a token is stored.
var (
	bucketSessions = []byte("sessions")
	bucketPresence = []byte("presence")
	bucketLegacy   = []byte("legacy")
)

// Sessions is the session.Store of the embedded store: a session.MemStore
// whose sessions and presence are also written to the bolt file, so that a
// restart keeps everyone signed in and present (no 401, no second join).
// What changes often (a session's last activity, a presence's lease) stays
// in memory: a restart gives every session a full TTL and every presence a
// full grace period, which its client's next poll renews. Each creation,
// end, join and leave is one fsynced transaction.
type Sessions struct {
	db  *bolt.DB
	mem *session.MemStore
}

// Sessions returns the store's session.Store, loaded from the file: each
// session lives ttl from now unless touched, and each presence grace from
// now unless renewed.
func (s *Store) Sessions(now time.Time, ttl, grace time.Duration) (*Sessions, error) {
	ss := &Sessions{db: s.db, mem: session.NewMemStore()}
	var leases []session.Lease
	err := s.db.View(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketSessions).ForEach(func(k, v []byte) error {
			ss.mem.Restore(session.Record{Hash: string(k), Name: string(v)}, now.Add(ttl))
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketPresence).ForEach(func(k, v []byte) error {
			room, name, ok := strings.Cut(string(k), "\x00")
			if !ok || len(v) != 8 {
				return fmt.Errorf("presence record %q is damaged", k)
			}
			since := time.UnixMilli(int64(binary.BigEndian.Uint64(v)))
			leases = append(leases, session.Lease{Room: room, Name: name, Since: since, Until: now.Add(grace)})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("load sessions: %w", err)
	}
	if _, err := ss.mem.Present(context.Background(), leases); err != nil {
		return nil, fmt.Errorf("load presence: %w", err)
	}
	return ss, nil
}

func presenceKey(room, name string) []byte { return []byte(room + "\x00" + name) }

// CreateSession implements session.Store.
func (s *Sessions) CreateSession(ctx context.Context, rec session.Record, now time.Time, ttl time.Duration) (bool, error) {
	taken, err := s.mem.CreateSession(ctx, rec, now, ttl)
	if err != nil || taken {
		return taken, err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSessions).Put([]byte(rec.Hash), []byte(rec.Name))
	})
	if err != nil {
		_, _, _ = s.mem.EndSession(ctx, rec.Hash)
		return false, fmt.Errorf("store session: %w", err)
	}
	return false, nil
}

// NameTaken implements session.Store, from memory (which mirrors the file).
func (s *Sessions) NameTaken(ctx context.Context, name string, now time.Time) (bool, error) {
	return s.mem.NameTaken(ctx, name, now)
}

// TouchSession implements session.Store, in memory only.
func (s *Sessions) TouchSession(ctx context.Context, hash string, now time.Time, ttl time.Duration) (string, bool, error) {
	return s.mem.TouchSession(ctx, hash, now, ttl)
}

// EndSession implements session.Store.
func (s *Sessions) EndSession(ctx context.Context, hash string) (string, bool, error) {
	name, ok, err := s.mem.EndSession(ctx, hash)
	if err != nil || !ok {
		return name, ok, err
	}
	if err := s.deleteSessions([]string{hash}); err != nil {
		return name, ok, err
	}
	return name, ok, nil
}

func (s *Sessions) deleteSessions(hashes []string) error {
	if len(hashes) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		for _, h := range hashes {
			if err := b.Delete([]byte(h)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete %d sessions: %w", len(hashes), err)
	}
	return nil
}

// Present implements session.Store; the file is written only for joins.
func (s *Sessions) Present(ctx context.Context, leases []session.Lease) ([]bool, error) {
	joined, err := s.mem.Present(ctx, leases)
	if err != nil {
		return nil, err
	}
	var fresh []session.Lease
	for i, j := range joined {
		if j {
			fresh = append(fresh, leases[i])
		}
	}
	if len(fresh) == 0 {
		return joined, nil
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPresence)
		for _, l := range fresh {
			var v [8]byte
			binary.BigEndian.PutUint64(v[:], uint64(l.Since.UnixMilli()))
			if err := b.Put(presenceKey(l.Room, l.Name), v[:]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// Not on file, so not joined: the next renewal joins again.
		ps := make([]session.Presence, len(fresh))
		for i, l := range fresh {
			ps[i] = session.Presence{Room: l.Room, Name: l.Name}
		}
		s.mem.Remove(ps)
		return nil, fmt.Errorf("store presence: %w", err)
	}
	return joined, nil
}

func (s *Sessions) deletePresence(ps []session.Presence) error {
	if len(ps) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPresence)
		for _, p := range ps {
			if err := b.Delete(presenceKey(p.Room, p.Name)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete presence: %w", err)
	}
	return nil
}

// LeaveAll implements session.Store.
func (s *Sessions) LeaveAll(ctx context.Context, name string) ([]string, error) {
	rooms, err := s.mem.LeaveAll(ctx, name)
	if err != nil {
		return nil, err
	}
	ps := make([]session.Presence, len(rooms))
	for i, r := range rooms {
		ps[i] = session.Presence{Room: r, Name: name}
	}
	return rooms, s.deletePresence(ps)
}

// Expire implements session.Store, and forgets the sessions that expired,
// in memory and on file.
func (s *Sessions) Expire(ctx context.Context, now time.Time) ([]session.Presence, error) {
	ps, err := s.mem.Expire(ctx, now)
	if err != nil {
		return nil, err
	}
	if err := s.deletePresence(ps); err != nil {
		return ps, err
	}
	return ps, s.deleteSessions(s.mem.DropExpired(now))
}

// Members implements session.Store.
func (s *Sessions) Members(ctx context.Context, room string) ([]shared.Member, error) {
	return s.mem.Members(ctx, room)
}
