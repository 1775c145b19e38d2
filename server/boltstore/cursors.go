package boltstore

import (
	"context"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/parley-chat/parley/server/session"
)

var _ session.CursorStore = (*Cursors)(nil)

// Cursors is the textbook readers' session.CursorStore in the bolt file
// (bucket "legacy": name → 8-byte big-endian seq then the epoch), so that
// /get_msg/ readers carry on after a restart. Each advance is one fsynced
// transaction.
type Cursors struct{ db *bolt.DB }

// Cursors returns the store's textbook cursors.
func (s *Store) Cursors() *Cursors { return &Cursors{db: s.db} }

func decodeCursor(v []byte) (session.Cursor, error) {
	if len(v) < 8 {
		return session.Cursor{}, fmt.Errorf("cursor record of %d bytes is damaged", len(v))
	}
	return session.Cursor{Seq: binary.BigEndian.Uint64(v[:8]), Epoch: string(v[8:])}, nil
}

func encodeCursor(c session.Cursor) []byte {
	v := make([]byte, 8, 8+len(c.Epoch))
	binary.BigEndian.PutUint64(v, c.Seq)
	return append(v, c.Epoch...)
}

// Cursor implements session.CursorStore.
func (c *Cursors) Cursor(_ context.Context, name string) (session.Cursor, bool, error) {
	var cur session.Cursor
	var ok bool
	err := c.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketLegacy).Get([]byte(name))
		if v == nil {
			return nil
		}
		var err error
		cur, err = decodeCursor(v)
		ok = err == nil
		return err
	})
	if err != nil {
		return cur, false, fmt.Errorf("cursor of %q: %w", name, err)
	}
	return cur, ok, nil
}

// AdvanceCursor implements session.CursorStore in one write transaction,
// which bolt runs one at a time.
func (c *Cursors) AdvanceCursor(_ context.Context, name string, old *session.Cursor, next session.Cursor) (bool, error) {
	var set bool
	err := c.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLegacy)
		v := b.Get([]byte(name))
		switch {
		case v == nil && old != nil, v != nil && old == nil:
			return nil
		case v != nil:
			cur, err := decodeCursor(v)
			if err != nil {
				return err
			}
			if cur != *old {
				return nil
			}
		}
		set = true
		return b.Put([]byte(name), encodeCursor(next))
	})
	if err != nil {
		return false, fmt.Errorf("advance cursor of %q: %w", name, err)
	}
	return set, nil
}
