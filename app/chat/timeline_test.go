package chat_test

import (
	"testing"

	"github.com/parley-chat/parley/app/chat"
	"github.com/parley-chat/parley/shared"
	"github.com/stretchr/testify/require"
)

func seqs(es []chat.Entry) []uint64 {
	var out []uint64
	for _, e := range es {
		out = append(out, e.Seq)
	}
	return out
}

func TestTimelineMergesBySeqWithoutDuplicates(t *testing.T) {
	tl := chat.NewTimeline(0)
	r := tl.Apply(shared.PollResponse{Epoch: "e", Messages: msgs(1, 3), Next: 3})
	require.Len(t, r.Added, 3)
	// The same batch again (a tab's broadcast of what this tab polled).
	r = tl.Apply(shared.PollResponse{Epoch: "e", Messages: msgs(1, 3), Next: 3})
	require.Empty(t, r.Added)
	// Overlapping batch.
	r = tl.Apply(shared.PollResponse{Epoch: "e", Messages: msgs(2, 5), Next: 5})
	require.Len(t, r.Added, 2)
	require.Equal(t, []uint64{1, 2, 3, 4, 5}, seqs(tl.Entries(0)))
	require.EqualValues(t, 5, tl.Next)
	require.Equal(t, []uint64{4, 5}, seqs(tl.Entries(2)))
}

func TestTimelineResetAndEpochChangeReplaceEverything(t *testing.T) {
	tl := chat.NewTimeline(0)
	tl.Apply(shared.PollResponse{Epoch: "e1", Messages: msgs(1, 10), Next: 10})
	r := tl.Apply(shared.PollResponse{Epoch: "e2", Messages: msgs(1, 2), Next: 2, Reset: true})
	require.True(t, r.Reset)
	require.Equal(t, []uint64{1, 2}, seqs(tl.Entries(0)))
	require.Equal(t, "e2", tl.Epoch)
	require.EqualValues(t, 2, tl.Next)
	// A different epoch without the reset flag (a broadcast from a tab that
	// saw the reset) is a reset too.
	r = tl.Apply(shared.PollResponse{Epoch: "e3", Messages: msgs(1, 1), Next: 1})
	require.True(t, r.Reset)
	require.Equal(t, []uint64{1}, seqs(tl.Entries(0)))
}

func TestTimelineGapMarksTheNextMessage(t *testing.T) {
	tl := chat.NewTimeline(0)
	tl.Apply(shared.PollResponse{Epoch: "e", Messages: msgs(1, 2), Next: 2})
	tl.Apply(shared.PollResponse{Epoch: "e", Next: 50, Gap: true})
	tl.Apply(shared.PollResponse{Epoch: "e", Messages: msgs(51, 52), Next: 52})
	es := tl.Entries(0)
	require.Equal(t, []uint64{1, 2, 51, 52}, seqs(es))
	require.False(t, es[1].GapBefore)
	require.True(t, es[2].GapBefore)
	require.False(t, es[3].GapBefore)
}

func TestTimelineBehindKeepsCursor(t *testing.T) {
	tl := chat.NewTimeline(0)
	tl.Apply(shared.PollResponse{Epoch: "e", Messages: msgs(1, 2), Next: 2})
	r := tl.Apply(shared.PollResponse{Epoch: "e", Messages: msgs(5, 6), Next: 6})
	require.True(t, r.Behind)
	require.EqualValues(t, 2, tl.Next, "the hole 3..4 must be fetched from the old cursor")
	r = tl.Apply(shared.PollResponse{Epoch: "e", Messages: msgs(3, 6), Next: 6})
	require.False(t, r.Behind)
	require.Len(t, r.Added, 2)
	require.Equal(t, []uint64{1, 2, 3, 4, 5, 6}, seqs(tl.Entries(0)))
	require.EqualValues(t, 6, tl.Next)
}

func TestTimelineBoundedAndPrepend(t *testing.T) {
	tl := chat.NewTimeline(100)
	tl.Apply(shared.PollResponse{Epoch: "e", Messages: msgs(1, 1000), Next: 1000})
	require.Equal(t, 100, tl.Len())
	require.EqualValues(t, 901, tl.Oldest())
	require.True(t, tl.HasOlder())
	n := tl.Prepend(shared.PollResponse{Epoch: "e", Messages: msgs(851, 900)})
	require.Equal(t, 50, n)
	require.EqualValues(t, 851, tl.Oldest())
	require.Zero(t, tl.Prepend(shared.PollResponse{Epoch: "other", Messages: msgs(800, 850)}), "a page of another epoch is ignored")
	// Insert (a send's answer) does not move the cursor.
	tl.Insert(shared.Message{Seq: 1002, Text: "x", ClientMsgID: "c1"})
	require.EqualValues(t, 1000, tl.Next)
	require.True(t, tl.HasClientMsgID("c1"))
	require.False(t, tl.HasClientMsgID(""))
}
