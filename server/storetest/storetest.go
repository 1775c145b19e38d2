// Package storetest is the conformance suite every queue.Store must pass, run
// by each store's own tests with a factory for fresh instances.
package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parley-chat/parley/server/queue"
	"github.com/parley-chat/parley/shared"
)

// Factory returns a new, empty store; the suite closes it.
type Factory func(t *testing.T) queue.Store

func text(room, author, body, id string) shared.Message {
	return shared.Message{Room: room, Kind: shared.KindText, Author: author, Text: body, ClientMsgID: id,
		SentAt: time.Date(2026, 11, 25, 21, 40, 0, 123e6, time.UTC)}
}

// Run runs the suite.
func Run(t *testing.T, newStore Factory) {
	ctx := context.Background()

	t.Run("NewRoomIsEmptyWithEpoch", func(t *testing.T) {
		s := newStore(t)
		st, err := s.LoadRoom(ctx, "lobby")
		require.NoError(t, err)
		require.NotEmpty(t, st.Epoch)
		require.Zero(t, st.Last)
		again, err := s.LoadRoom(ctx, "lobby")
		require.NoError(t, err)
		require.Equal(t, st.Epoch, again.Epoch, "epoch must be stable while the log lives")
		other, err := s.LoadRoom(ctx, "other")
		require.NoError(t, err)
		require.NotEqual(t, st.Epoch, other.Epoch)
		msgs, err := s.Range(ctx, "lobby", 1, 100, 10)
		require.NoError(t, err)
		require.Empty(t, msgs)
	})

	t.Run("FirstAppendKeepsTheEpochOfTheEmptyRoom", func(t *testing.T) {
		// A read of a room with no messages creates nothing, yet the
		// cursor it hands out must stay valid once the room is created.
		s := newStore(t)
		before, err := s.LoadRoom(ctx, "fresh")
		require.NoError(t, err)
		require.Zero(t, before.Last)
		_, err = s.Append(ctx, []shared.Message{text("fresh", "x", "1", "")})
		require.NoError(t, err)
		after, err := s.LoadRoom(ctx, "fresh")
		require.NoError(t, err)
		require.Equal(t, before.Epoch, after.Epoch)
		require.Equal(t, uint64(1), after.Last)
	})

	t.Run("AppendAssignsDenseSeqsPerRoom", func(t *testing.T) {
		s := newStore(t)
		res, err := s.Append(ctx, []shared.Message{
			text("a", "x", "1", ""), text("b", "x", "1", ""), text("a", "x", "2", ""), text("a", "y", "3", ""),
		})
		require.NoError(t, err)
		require.Len(t, res, 4)
		var seqs []string
		for _, r := range res {
			require.False(t, r.Duplicate)
			seqs = append(seqs, fmt.Sprintf("%s%d", r.Message.Room, r.Message.Seq))
		}
		require.Equal(t, []string{"a1", "b1", "a2", "a3"}, seqs)
		st, err := s.LoadRoom(ctx, "a")
		require.NoError(t, err)
		require.EqualValues(t, 3, st.Last)
		require.EqualValues(t, 1, st.First)
		msgs, err := s.Range(ctx, "a", 1, 3, 10)
		require.NoError(t, err)
		require.Len(t, msgs, 3)
		require.Equal(t, res[3].Message, msgs[2], "stored message round-trips exactly")
	})

	t.Run("RangeBoundsAndLimit", func(t *testing.T) {
		s := newStore(t)
		batch := make([]shared.Message, 20)
		for i := range batch {
			batch[i] = text("r", "x", fmt.Sprint(i+1), "")
		}
		_, err := s.Append(ctx, batch)
		require.NoError(t, err)
		for _, c := range []struct {
			from, to     uint64
			limit        int
			first, count int
		}{
			{1, 20, 100, 1, 20},
			{5, 9, 100, 5, 5},
			{5, 100, 3, 5, 3},
			{18, 30, 10, 18, 3},
			{21, 30, 10, 0, 0},
			{0, 2, 10, 1, 2},
			{7, 6, 10, 0, 0},
		} {
			msgs, err := s.Range(ctx, "r", c.from, c.to, c.limit)
			require.NoError(t, err)
			require.Len(t, msgs, c.count, "range [%d,%d] limit %d", c.from, c.to, c.limit)
			for i, m := range msgs {
				require.EqualValues(t, c.first+i, m.Seq)
			}
		}
		msgs, err := s.Range(ctx, "missing", 1, 10, 10)
		require.NoError(t, err)
		require.Empty(t, msgs)
	})

	t.Run("ClientMsgIDIsIdempotentPerAuthorAndRoom", func(t *testing.T) {
		s := newStore(t)
		res, err := s.Append(ctx, []shared.Message{
			text("r", "alice", "hi", "id1"),
			text("r", "alice", "hi again", "id1"), // same batch, same id: a retry
			text("r", "bob", "hi", "id1"),         // another author may pick the same id
			text("q", "alice", "hi", "id1"),       // another room is another log
			text("r", "alice", "no id", ""),
			text("r", "alice", "no id", ""), // without an id nothing is deduplicated
		})
		require.NoError(t, err)
		require.False(t, res[0].Duplicate)
		require.True(t, res[1].Duplicate)
		require.Equal(t, res[0].Message, res[1].Message, "a duplicate returns the original")
		require.False(t, res[2].Duplicate)
		require.False(t, res[3].Duplicate)
		require.EqualValues(t, 3, res[4].Message.Seq)
		require.EqualValues(t, 4, res[5].Message.Seq)

		res2, err := s.Append(ctx, []shared.Message{text("r", "alice", "later", "id1")})
		require.NoError(t, err)
		require.True(t, res2[0].Duplicate)
		require.Equal(t, res[0].Message, res2[0].Message)
		st, err := s.LoadRoom(ctx, "r")
		require.NoError(t, err)
		require.EqualValues(t, 4, st.Last, "duplicates take no seq")
	})

	t.Run("ConcurrentAppendAndRange", func(t *testing.T) {
		s := newStore(t)
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := range 50 {
					_, err := s.Append(ctx, []shared.Message{text("c", fmt.Sprint("w", g), fmt.Sprint(i), fmt.Sprint(i))})
					if err != nil {
						t.Error(err)
						return
					}
					if _, err := s.Range(ctx, "c", 1, 1000, 1000); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		msgs, err := s.Range(ctx, "c", 1, 1000, 1000)
		require.NoError(t, err)
		require.Len(t, msgs, 200)
		for i, m := range msgs {
			require.EqualValues(t, i+1, m.Seq)
		}
	})
}
