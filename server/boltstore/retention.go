package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/parley-chat/parley/server/memstore"
	"github.com/parley-chat/parley/shared"
)

// Retention bounds what the file keeps. Messages leave from the front of a
// room's log only, so the seqs that stay are still dense and a reader
// whose cursor fell below them is answered from the oldest one with a gap
// (queue.Hub.catchUp). An idempotency record leaves with its message, or
// after IDWindow, whichever comes first.
type Retention struct {
	// Messages is how many messages each room keeps; 0 keeps them all.
	Messages int
	// Age drops messages sent longer ago than this; 0 keeps them whatever
	// their age.
	Age time.Duration
	// IDWindow is how long a client_msg_id is remembered
	// (DefaultIDWindow when 0), as Redis's keys expire after a day.
	IDWindow time.Duration
}

// DefaultIDWindow is how long a retry with the same client_msg_id is
// answered with the original: a day, like redisstore.DefaultIDTTL.
const DefaultIDWindow = 24 * time.Hour

// trimSlice bounds the deletions of one write transaction, so that a
// room with a large backlog to drop holds bolt's one writer for a few
// milliseconds at a time, between the Hub's appends, never for the whole
// backlog.
const trimSlice = 1024

// keyIDFloor is a room's seq up to which every idempotency record is gone.
var keyIDFloor = []byte("idfloor")

// msgsFill fills the message buckets' pages: their keys are seqs put in
// increasing order, so a page is never written into again once the next
// one starts, and the default half-full split would leave half the file
// empty.
const msgsFill = 1.0

// Retain runs Trim every interval until ctx ends. A failed pass is logged
// and tried again at the next tick.
func (s *Store) Retain(ctx context.Context, every time.Duration, r Retention, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := s.Trim(ctx, time.Now(), r)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("bolt retention", "err", err)
		case n > 0:
			log.Debug("bolt retention", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Trim deletes, in slices of trimSlice, what r no longer keeps: messages
// beyond r.Messages per room or older than r.Age, and idempotency records
// older than r.IDWindow. It returns how many records it deleted. Pages
// freed are reused by later appends; bolt never shrinks the file.
func (s *Store) Trim(ctx context.Context, now time.Time, r Retention) (int, error) {
	if r.IDWindow <= 0 {
		r.IDWindow = DefaultIDWindow
	}
	total := 0
	var from []byte // the room to plan from; nil: the first
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		var p []roomTrim
		var next []byte
		err := s.db.View(func(tx *bolt.Tx) error {
			var err error
			p, next, err = plan(tx, from, now, r)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("plan retention: %w", err)
		}
		if len(p) > 0 {
			n, err := s.apply(p)
			total += n
			if err != nil {
				return total, fmt.Errorf("apply retention: %w", err)
			}
		}
		if next == nil {
			return total, nil
		}
		from = next
	}
}

// roomTrim is what one slice deletes in one room.
type roomTrim struct {
	room []byte
	// msgs is the last seq of the messages to delete, from the first; 0:
	// none.
	msgs uint64
	// ids are the idempotency records to delete with the seq each must
	// still point at, and floor the room's new keyIDFloor.
	ids   []idRec
	floor uint64
}

type idRec struct {
	key []byte
	seq uint64
}

// stamp is the part of a stored message retention reads.
type stamp struct {
	Author      string    `json:"author"`
	ClientMsgID string    `json:"client_msg_id"`
	SentAt      time.Time `json:"sent_at"`
}

// plan finds up to trimSlice deletions, from the room named from on. next
// is where the following slice starts, nil when every room was seen.
func plan(tx *bolt.Tx, from []byte, now time.Time, r Retention) (p []roomTrim, next []byte, err error) {
	budget := trimSlice
	c := tx.Bucket(bucketRooms).Cursor()
	k, _ := c.First()
	if from != nil {
		k, _ = c.Seek(from)
	}
	for ; k != nil; k, _ = c.Next() {
		if budget <= 0 {
			return p, append([]byte(nil), k...), nil
		}
		rb := tx.Bucket(bucketRooms).Bucket(k)
		if rb == nil {
			continue
		}
		t, used, err := planRoom(rb, now, r, budget)
		if err != nil {
			return nil, nil, fmt.Errorf("room %q: %w", k, err)
		}
		budget -= used
		if t.msgs > 0 || len(t.ids) > 0 || t.floor > 0 {
			t.room = append([]byte(nil), k...)
			p = append(p, t)
		}
		if budget <= 0 {
			// The room may have more to drop: the next slice looks at it
			// again.
			return p, append([]byte(nil), k...), nil
		}
	}
	return p, nil, nil
}

// planRoom plans up to budget deletions in one room, oldest first.
func planRoom(rb *bolt.Bucket, now time.Time, r Retention, budget int) (t roomTrim, used int, err error) {
	mb := rb.Bucket(bucketMsgs)
	ib := rb.Bucket(bucketIDs)
	last := mb.Sequence()
	var floor uint64
	if v := rb.Get(keyIDFloor); len(v) == 8 {
		floor = binary.BigEndian.Uint64(v)
	}
	var keepFrom uint64 // the first seq the count bound keeps
	if r.Messages > 0 && last > uint64(r.Messages) {
		keepFrom = last - uint64(r.Messages) + 1
	}
	ageCut := time.Time{}
	if r.Age > 0 {
		ageCut = now.Add(-r.Age)
	}
	idCut := now.Add(-r.IDWindow)
	c := mb.Cursor()
	k, v := c.First()
	for k != nil && used < budget {
		seq := binary.BigEndian.Uint64(k)
		var st stamp
		if err := json.Unmarshal(v, &st); err != nil {
			return t, used, fmt.Errorf("decode message %d: %w", seq, err)
		}
		drop := seq < keepFrom || (!ageCut.IsZero() && st.SentAt.Before(ageCut))
		if !drop && !st.SentAt.Before(idCut) {
			break // kept with its id; later messages are newer still
		}
		if !drop && seq <= floor {
			// Kept, its id already gone: go on past what was done before.
			k, v = c.Seek(seqKey(floor + 1))
			continue
		}
		// Every step counted here changes something, so each slice makes
		// progress.
		used++
		if drop {
			t.msgs = seq
		}
		if seq > floor {
			if st.ClientMsgID != "" {
				key := []byte(memstore.IDKey(shared.Message{Author: st.Author, ClientMsgID: st.ClientMsgID}))
				if sv := ib.Get(key); len(sv) == 8 && binary.BigEndian.Uint64(sv) == seq {
					t.ids = append(t.ids, idRec{key: key, seq: seq})
					used++
				}
			}
			t.floor = seq
		}
		k, v = c.Next()
	}
	return t, used, nil
}

// apply deletes what plan found, in one transaction. Only retention
// deletes and appends only add past the end, so the plan still holds; the
// checks are for a record replaced since.
func (s *Store) apply(p []roomTrim) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		n = 0
		for _, t := range p {
			rb := tx.Bucket(bucketRooms).Bucket(t.room)
			if rb == nil {
				continue
			}
			mb, ib := rb.Bucket(bucketMsgs), rb.Bucket(bucketIDs)
			mb.FillPercent = msgsFill
			for _, id := range t.ids {
				if v := ib.Get(id.key); bytes.Equal(v, seqKey(id.seq)) {
					if err := ib.Delete(id.key); err != nil {
						return err
					}
					n++
				}
			}
			if t.msgs > 0 {
				c := mb.Cursor()
				// Deleting at the cursor moves it on to the next key.
				for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= t.msgs; k, _ = c.First() {
					if err := c.Delete(); err != nil {
						return err
					}
					n++
				}
			}
			if t.floor > 0 {
				if err := rb.Put(keyIDFloor, seqKey(t.floor)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return n, err
}
