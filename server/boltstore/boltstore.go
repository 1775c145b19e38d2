// Package boltstore is Parley's default, durable queue.Store: one bbolt file.
// A commit is fsynced before Append returns, and the Hub hands it whole
// batches, so concurrent senders share one fsync.
package boltstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/parley-chat/parley/server/memstore"
	"github.com/parley-chat/parley/server/queue"
	"github.com/parley-chat/parley/shared"
)

var _ queue.Store = (*Store)(nil)

// Layout: bucket "rooms" holds one bucket per room, which holds the key
// "epoch", a bucket "msgs" (8-byte big-endian seq → JSON message; the
// bucket's own sequence is the room's last seq) and a bucket "ids"
// (author NUL client_msg_id → seq) for idempotent sends. Bucket "meta"
// holds the file's "incarnation", from which rooms not created yet get
// their epoch.
var (
	bucketRooms    = []byte("rooms")
	bucketMsgs     = []byte("msgs")
	bucketIDs      = []byte("ids")
	bucketMeta     = []byte("meta")
	keyEpoch       = []byte("epoch")
	keyIncarnation = []byte("incarnation")
)

// Store is a queue.Store in a bbolt file.
type Store struct {
	db          *bolt.DB
	incarnation string
}

// Open opens (creating if needed) the database at path. It fails after a
// few seconds rather than hang when another process holds the file.
func Open(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 3 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	var inc string
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketRooms, bucketSessions, bucketPresence, bucketLegacy, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		inc = string(meta.Get(keyIncarnation))
		if inc == "" {
			inc = memstore.NewEpoch()
			return meta.Put(keyIncarnation, []byte(inc))
		}
		return nil
	}); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("init %s: %w", path, err)
	}
	return &Store{db: db, incarnation: inc}, nil
}

// pendingEpoch is the epoch of a room that has no bucket yet: LoadRoom
// reports it without writing anything, and the first append creates the
// room with it, so a cursor taken before the first message stays valid.
// The incarnation is the file's, so a new file gives every room a new one.
// (Nothing deletes a room's bucket; a store that did would have to give
// the room a fresh random epoch, as redisstore does for a lost meta key.)
func (s *Store) pendingEpoch(room string) string {
	sum := sha256.Sum256([]byte(s.incarnation + "\x00" + room))
	return hex.EncodeToString(sum[:8])
}

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

// roomBucket returns the room's bucket, creating it with its pending epoch
// when create is true; nil when absent and not created.
func (s *Store) roomBucket(tx *bolt.Tx, room string, create bool) (*bolt.Bucket, error) {
	rooms := tx.Bucket(bucketRooms)
	if b := rooms.Bucket([]byte(room)); b != nil || !create {
		return b, nil
	}
	b, err := rooms.CreateBucket([]byte(room))
	if err != nil {
		return nil, err
	}
	if _, err := b.CreateBucket(bucketMsgs); err != nil {
		return nil, err
	}
	if _, err := b.CreateBucket(bucketIDs); err != nil {
		return nil, err
	}
	return b, b.Put(keyEpoch, []byte(s.pendingEpoch(room)))
}

// LoadRoom implements queue.Store. It writes nothing: a room without a
// bucket is empty, at its pending epoch, until its first message, so reads
// of made-up room names cost no write and no fsync and leave no trace.
func (s *Store) LoadRoom(_ context.Context, room string) (queue.RoomState, error) {
	st := queue.RoomState{Epoch: s.pendingEpoch(room), First: 1}
	err := s.db.View(func(tx *bolt.Tx) error {
		b, err := s.roomBucket(tx, room, false)
		if err != nil || b == nil {
			return err
		}
		st.Epoch = string(b.Get(keyEpoch))
		msgs := b.Bucket(bucketMsgs)
		st.Last = msgs.Sequence()
		st.First = st.Last + 1
		if k, _ := msgs.Cursor().First(); k != nil {
			st.First = binary.BigEndian.Uint64(k)
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("load room %q: %w", room, err)
	}
	return st, nil
}

// Append implements queue.Store: one transaction, one fsync, for the batch.
func (s *Store) Append(_ context.Context, msgs []shared.Message) ([]queue.Result, error) {
	out := make([]queue.Result, len(msgs))
	err := s.db.Update(func(tx *bolt.Tx) error {
		for i, m := range msgs {
			b, err := s.roomBucket(tx, m.Room, true)
			if err != nil {
				return err
			}
			mb, ib := b.Bucket(bucketMsgs), b.Bucket(bucketIDs)
			mb.FillPercent = msgsFill
			idKey := []byte(memstore.IDKey(m))
			if m.ClientMsgID != "" {
				if v := ib.Get(idKey); len(v) == 8 {
					res := queue.Result{Message: m, Duplicate: true}
					res.Message.Seq = binary.BigEndian.Uint64(v)
					// Retention drops a record with its message; should one
					// outlive it all the same, the retry stands in for the
					// original with its seq, as with Redis.
					if ov := mb.Get(v); ov != nil {
						var orig shared.Message
						if err := json.Unmarshal(ov, &orig); err != nil {
							return fmt.Errorf("decode original of %q: %w", m.ClientMsgID, err)
						}
						res.Message = orig
					}
					out[i] = res
					continue
				}
			}
			seq, err := mb.NextSequence()
			if err != nil {
				return err
			}
			m.Seq = seq
			v, err := json.Marshal(m)
			if err != nil {
				return err
			}
			if err := mb.Put(seqKey(seq), v); err != nil {
				return err
			}
			if m.ClientMsgID != "" {
				if err := ib.Put(idKey, seqKey(seq)); err != nil {
					return err
				}
			}
			out[i] = queue.Result{Message: m}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("append %d messages: %w", len(msgs), err)
	}
	return out, nil
}

// Range implements queue.Store.
func (s *Store) Range(_ context.Context, room string, from, to uint64, limit int) ([]shared.Message, error) {
	var out []shared.Message
	err := s.db.View(func(tx *bolt.Tx) error {
		b, err := s.roomBucket(tx, room, false)
		if err != nil || b == nil {
			return err
		}
		c := b.Bucket(bucketMsgs).Cursor()
		for k, v := c.Seek(seqKey(from)); k != nil && len(out) < limit; k, v = c.Next() {
			if binary.BigEndian.Uint64(k) > to {
				break
			}
			var m shared.Message
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("decode message %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("range %q [%d,%d]: %w", room, from, to, err)
	}
	return out, nil
}

// Close implements queue.Store.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close bolt: %w", err)
	}
	return nil
}
