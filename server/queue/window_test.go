package queue

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parley-chat/parley/shared"
)

func TestWindowKeepsNewestDensely(t *testing.T) {
	w := newWindow(3)
	require.Zero(t, w.first())
	require.Nil(t, w.after(0, 10))
	for s := uint64(1); s <= 10; s++ {
		w.push(shared.Message{Seq: s})
		h := w.held()
		require.LessOrEqual(t, len(h), 3)
		require.Equal(t, s, h[len(h)-1].Seq)
		for i := range h {
			require.Equal(t, h[0].Seq+uint64(i), h[i].Seq)
		}
	}
	require.LessOrEqual(t, len(w.msgs), 6, "storage stays bounded at twice max")
	require.Equal(t, []uint64{9, 10}, seqsOf(w.after(8, 10)))
	require.Equal(t, []uint64{8, 9, 10}, seqsOf(w.after(0, 10)))
	require.Equal(t, []uint64{8}, seqsOf(w.after(7, 1)))
	require.Nil(t, w.after(10, 10))
	require.Equal(t, []uint64{8, 9}, seqsOf(w.before(10, 10)))
	require.Equal(t, []uint64{9}, seqsOf(w.before(10, 1)))
	require.Nil(t, w.before(8, 10))
	require.True(t, w.covers(8))
	require.False(t, w.covers(7))
	require.True(t, w.covers(11), "nothing to cover beyond the end")
}

func TestWindowAfterReturnsCopy(t *testing.T) {
	w := newWindow(4)
	w.push(shared.Message{Seq: 1, Text: "a"})
	got := w.after(0, 1)
	got[0].Text = "changed"
	require.Equal(t, "a", w.held()[0].Text)
}

func seqsOf(msgs []shared.Message) []uint64 {
	var out []uint64
	for _, m := range msgs {
		out = append(out, m.Seq)
	}
	return out
}
