package boltstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/parley-chat/parley/server/boltstore"
	"github.com/parley-chat/parley/server/queue"
	"github.com/parley-chat/parley/server/storetest"
	"github.com/parley-chat/parley/shared"
)

func open(t testing.TB, path string) *boltstore.Store {
	s, err := boltstore.Open(path)
	require.NoError(t, err)
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) queue.Store {
		s := open(t, filepath.Join(t.TempDir(), "p.db"))
		t.Cleanup(func() { require.NoError(t, s.Close()) })
		return s
	})
}

func TestReopenKeepsLogEpochAndIDs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", "p.db")
	s := open(t, path)
	st, err := s.LoadRoom(ctx, "lobby")
	require.NoError(t, err)
	res, err := s.Append(ctx, []shared.Message{
		{Room: "lobby", Kind: shared.KindText, Author: "a", Text: "one", ClientMsgID: "c1"},
		{Room: "lobby", Kind: shared.KindText, Author: "a", Text: "two"},
	})
	require.NoError(t, err)
	require.NoError(t, s.Close())

	s = open(t, path)
	defer s.Close()
	st2, err := s.LoadRoom(ctx, "lobby")
	require.NoError(t, err)
	require.Equal(t, st.Epoch, st2.Epoch)
	require.EqualValues(t, 2, st2.Last)
	msgs, err := s.Range(ctx, "lobby", 1, 2, 10)
	require.NoError(t, err)
	require.Equal(t, []shared.Message{res[0].Message, res[1].Message}, msgs)

	dup, err := s.Append(ctx, []shared.Message{{Room: "lobby", Kind: shared.KindText, Author: "a", Text: "one", ClientMsgID: "c1"}})
	require.NoError(t, err)
	require.True(t, dup[0].Duplicate, "idempotency survives a restart")
	next, err := s.Append(ctx, []shared.Message{{Room: "lobby", Kind: shared.KindText, Author: "a", Text: "three"}})
	require.NoError(t, err)
	require.EqualValues(t, 3, next[0].Message.Seq)
}

func TestSecondOpenFailsInsteadOfHanging(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	s := open(t, path)
	defer s.Close()
	_, err := boltstore.Open(path)
	require.Error(t, err)
}

// BenchmarkAppend measures durable appends in batches of several sizes, as
// the Hub writer hands them over: one fsync per batch.
func BenchmarkAppend(b *testing.B) {
	for _, batch := range []int{1, 16, 128} {
		b.Run(fmt.Sprint("batch=", batch), func(b *testing.B) {
			s := open(b, filepath.Join(b.TempDir(), "p.db"))
			defer s.Close()
			msgs := make([]shared.Message, batch)
			for i := range msgs {
				msgs[i] = shared.Message{Room: "lobby", Kind: shared.KindText, Author: "bench", Text: "hello, world"}
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := s.Append(context.Background(), msgs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// lastTx returns the file's last committed transaction id and how many
// rooms it holds, read with bbolt itself after the store is closed.
func lastTx(t *testing.T, path string) (txid int, rooms int) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	require.NoError(t, err)
	defer func() { require.NoError(t, db.Close()) }()
	require.NoError(t, db.View(func(tx *bolt.Tx) error {
		txid = tx.ID()
		return tx.Bucket([]byte("rooms")).ForEach(func(_, _ []byte) error { rooms++; return nil })
	}))
	return txid, rooms
}

func TestReadsOfEmptyRoomsWriteNothing(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "p.db")
	s := open(t, path)
	require.NoError(t, s.Close())
	tx0, rooms0 := lastTx(t, path)
	require.Zero(t, rooms0)

	s = open(t, path)
	for i := range 100 {
		room := fmt.Sprintf("made-up-%d", i)
		_, err := s.LoadRoom(ctx, room)
		require.NoError(t, err)
		_, err = s.Range(ctx, room, 1, 10, 10)
		require.NoError(t, err)
	}
	require.NoError(t, s.Close())
	tx1, rooms1 := lastTx(t, path)
	// Open commits its own init transaction; the reads must add none.
	require.Equal(t, tx0+1, tx1, "a read committed a write transaction (and an fsync)")
	require.Zero(t, rooms1)

	// The first message creates the room, at the epoch reads reported.
	s = open(t, path)
	st, err := s.LoadRoom(ctx, "made-up-7")
	require.NoError(t, err)
	_, err = s.Append(ctx, []shared.Message{{Room: "made-up-7", Kind: shared.KindText, Author: "a", Text: "hi"}})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	_, rooms2 := lastTx(t, path)
	require.Equal(t, 1, rooms2)
	s = open(t, path)
	defer func() { require.NoError(t, s.Close()) }()
	again, err := s.LoadRoom(ctx, "made-up-7")
	require.NoError(t, err)
	require.Equal(t, st.Epoch, again.Epoch)
	require.Equal(t, uint64(1), again.Last)
}
