package boltstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/parley-chat/parley/server/boltstore"
	"github.com/parley-chat/parley/server/queue"
	"github.com/parley-chat/parley/shared"
)

// fill appends n messages to room, sent at `at`, in batches of 256 as the
// Hub hands them over; with ids, each carries client_msg_id "c<i>".
func fill(t testing.TB, s *boltstore.Store, room string, n int, at time.Time, ids bool) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; {
		batch := make([]shared.Message, 0, 256)
		for ; i < n && len(batch) < cap(batch); i++ {
			m := shared.Message{Room: room, Kind: shared.KindText, Author: "a", Text: fmt.Sprint("message ", i), SentAt: at}
			if ids {
				m.ClientMsgID = fmt.Sprint("c", i)
			}
			batch = append(batch, m)
		}
		_, err := s.Append(ctx, batch)
		require.NoError(t, err)
	}
}

func retry(t *testing.T, s *boltstore.Store, room, id string) queue.Result {
	t.Helper()
	res, err := s.Append(context.Background(), []shared.Message{{Room: room, Kind: shared.KindText, Author: "a", Text: "retry", ClientMsgID: id}})
	require.NoError(t, err)
	return res[0]
}

func TestTrimKeepsTheNewestOfEachRoom(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "p.db"))
	defer s.Close()
	now := time.Now()
	fill(t, s, "big", 3000, now, true)
	fill(t, s, "small", 10, now, true)

	// 2,000 messages and their 2,000 ids: four slices.
	n, err := s.Trim(ctx, now, boltstore.Retention{Messages: 1000})
	require.NoError(t, err)
	require.Equal(t, 4000, n)
	st, err := s.LoadRoom(ctx, "big")
	require.NoError(t, err)
	require.EqualValues(t, 2001, st.First, "the oldest retained seq is reported")
	require.EqualValues(t, 3000, st.Last)
	msgs, err := s.Range(ctx, "big", 1, 3000, 5000)
	require.NoError(t, err)
	require.Len(t, msgs, 1000)
	for i, m := range msgs {
		require.EqualValues(t, 2001+i, m.Seq, "what stays is dense")
	}
	small, err := s.LoadRoom(ctx, "small")
	require.NoError(t, err)
	require.EqualValues(t, 1, small.First)

	// A dropped message's id went with it; a kept one's still answers.
	require.False(t, retry(t, s, "big", "c4").Duplicate)
	kept := retry(t, s, "big", "c2500")
	require.True(t, kept.Duplicate)
	require.EqualValues(t, 2501, kept.Message.Seq)
	require.Equal(t, "message 2500", kept.Message.Text)

	n, err = s.Trim(ctx, now, boltstore.Retention{Messages: 1000})
	require.NoError(t, err)
	require.Equal(t, 2, n, "only the one appended since, and its id")
	n, err = s.Trim(ctx, now, boltstore.Retention{Messages: 1000})
	require.NoError(t, err)
	require.Zero(t, n)
}

func TestTrimByAge(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "p.db"))
	defer s.Close()
	now := time.Now()
	fill(t, s, "r", 50, now.Add(-48*time.Hour), false)
	fill(t, s, "r", 20, now.Add(-time.Minute), false)
	fill(t, s, "old", 5, now.Add(-48*time.Hour), false)

	n, err := s.Trim(ctx, now, boltstore.Retention{})
	require.NoError(t, err)
	require.Zero(t, n, "no bound: everything stays")

	n, err = s.Trim(ctx, now, boltstore.Retention{Age: 24 * time.Hour})
	require.NoError(t, err)
	require.Equal(t, 55, n)
	st, err := s.LoadRoom(ctx, "r")
	require.NoError(t, err)
	require.EqualValues(t, 51, st.First)
	require.EqualValues(t, 70, st.Last)
	// A room whose every message aged out keeps its epoch and its seqs:
	// cursors stay valid, and the next message is seq 6.
	old, err := s.LoadRoom(ctx, "old")
	require.NoError(t, err)
	require.EqualValues(t, 6, old.First)
	require.EqualValues(t, 5, old.Last)
	res, err := s.Append(ctx, []shared.Message{{Room: "old", Kind: shared.KindText, Author: "a", Text: "back"}})
	require.NoError(t, err)
	require.EqualValues(t, 6, res[0].Message.Seq)
	again, err := s.LoadRoom(ctx, "old")
	require.NoError(t, err)
	require.Equal(t, old.Epoch, again.Epoch)
}

func TestIDsExpireAfterTheirWindowWhileMessagesStay(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "p.db"))
	defer s.Close()
	now := time.Now()
	fill(t, s, "r", 1500, now.Add(-25*time.Hour), true)
	fill(t, s, "r", 10, now.Add(-time.Hour), true) // c0…c9 again: duplicates
	_, err := s.Append(ctx, []shared.Message{{Room: "r", Kind: shared.KindText, Author: "a", Text: "fresh", ClientMsgID: "fresh", SentAt: now.Add(-time.Hour)}})
	require.NoError(t, err)

	n, err := s.Trim(ctx, now, boltstore.Retention{})
	require.NoError(t, err)
	require.Equal(t, 1500, n, "a day-old id is forgotten")
	st, err := s.LoadRoom(ctx, "r")
	require.NoError(t, err)
	require.EqualValues(t, 1, st.First, "the messages themselves stay")
	require.False(t, retry(t, s, "r", "c7").Duplicate)
	require.True(t, retry(t, s, "r", "fresh").Duplicate, "an hour-old id is remembered")

	n, err = s.Trim(ctx, now, boltstore.Retention{})
	require.NoError(t, err)
	require.Zero(t, n, "the pass resumes past what it did")
}

func TestReaderBelowTheRetainedRangeGetsTheOldestWithAGap(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "p.db"))
	defer s.Close()
	now := time.Now()
	fill(t, s, "r", 300, now, false)
	_, err := s.Trim(ctx, now, boltstore.Retention{Messages: 100})
	require.NoError(t, err)

	hub := queue.New(s, queue.Options{History: 10})
	defer hub.Close()
	st, err := s.LoadRoom(ctx, "r")
	require.NoError(t, err)
	after := uint64(50)
	p, err := hub.Read(ctx, "r", queue.Query{After: &after, Epoch: st.Epoch, Limit: 20})
	require.NoError(t, err)
	require.True(t, p.Gap, "the reader knows it missed some")
	require.False(t, p.Reset)
	require.EqualValues(t, 201, p.Messages[0].Seq, "the oldest retained")
	require.EqualValues(t, 220, p.Next)

	before := uint64(205)
	p, err = hub.Read(ctx, "r", queue.Query{Before: &before, Epoch: st.Epoch, Limit: 20})
	require.NoError(t, err)
	require.Len(t, p.Messages, 4, "history stops at the oldest retained")
	require.EqualValues(t, 201, p.Messages[0].Seq)
}

// TestFileStopsGrowingUnderRetention appends the same traffic round after
// round to a real file: without retention the file grows every round;
// with it, space freed by each pass is reused and the size stays flat.
func TestFileStopsGrowingUnderRetention(t *testing.T) {
	const rounds, perRound = 12, 6000
	text := strings.Repeat("x", 200)
	run := func(trim bool) (sizes, hw []int64) {
		ctx := context.Background()
		path := filepath.Join(t.TempDir(), "p.db")
		s := open(t, path)
		defer s.Close()
		for range rounds {
			for room := range 3 {
				batch := make([]shared.Message, 0, 256)
				for i := range perRound / 3 {
					batch = append(batch, shared.Message{Room: fmt.Sprint("room", room), Kind: shared.KindText, Author: "a", Text: text, ClientMsgID: fmt.Sprint(time.Now().UnixNano(), i), SentAt: time.Now()})
					if len(batch) == cap(batch) || i == perRound/3-1 {
						_, err := s.Append(ctx, batch)
						require.NoError(t, err)
						batch = batch[:0]
					}
				}
			}
			if trim {
				_, err := s.Trim(ctx, time.Now(), boltstore.Retention{Messages: 2000})
				require.NoError(t, err)
			}
			fi, err := os.Stat(path)
			require.NoError(t, err)
			sizes = append(sizes, fi.Size())
			hw = append(hw, s.HighWater())
		}
		return sizes, hw
	}
	kept, keptHW := run(true)
	all, allHW := run(false)
	t.Logf("retaining 2,000 per room: file %v, pages up to %v", kept, keptHW)
	t.Logf("retaining all: file %v, pages up to %v", all, allHW)
	require.Greater(t, allHW[rounds-1], 2*allHW[2], "without retention the file grows")
	// Which round the last page is added in depends on how the passes
	// were sliced: a page or two may come after the third round, none in
	// the second half.
	for i := 3; i < rounds; i++ {
		require.Equal(t, kept[2], kept[i], "round %d: with retention the file stays the same size", i)
		require.LessOrEqual(t, keptHW[i]-keptHW[2], int64(64<<10), "round %d: freed pages are reused", i)
	}
	for i := rounds / 2; i < rounds; i++ {
		require.Equal(t, keptHW[rounds/2], keptHW[i], "round %d: no page added", i)
	}
}

// TestMessagePagesAreFilledDensely: with keys appended in order, pages
// filled to the brim make a file well under what bolt's default half-full
// split makes (measured: 2.96 MB of pages at 1.0, 5.97 MB at 0.5).
func TestMessagePagesAreFilledDensely(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	s := open(t, path)
	now := time.Now()
	fill(t, s, "r", 20000, now, false)
	hw := s.HighWater()
	require.NoError(t, s.Close())
	fi, err := os.Stat(path)
	require.NoError(t, err)
	// 20,000 messages of about 110 bytes of JSON: 2.2 MB of data.
	t.Logf("20,000 messages: file %d bytes, pages up to %d", fi.Size(), hw)
	require.Less(t, hw, int64(4e6))
}
