package memstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parley-chat/parley/server/memstore"
	"github.com/parley-chat/parley/server/queue"
	"github.com/parley-chat/parley/server/storetest"
	"github.com/parley-chat/parley/shared"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) queue.Store {
		s := memstore.New(0)
		t.Cleanup(func() { require.NoError(t, s.Close()) })
		return s
	})
}

func TestRetainDropsOldest(t *testing.T) {
	ctx := context.Background()
	s := memstore.New(10)
	for i := range 35 {
		_, err := s.Append(ctx, []shared.Message{{Room: "r", Kind: shared.KindText, Author: "a", Text: fmt.Sprint(i), ClientMsgID: fmt.Sprint(i)}})
		require.NoError(t, err)
	}
	msgs, err := s.Range(ctx, "r", 1, 100, 100)
	require.NoError(t, err)
	require.Len(t, msgs, 10, "only the newest retain messages are served")
	require.EqualValues(t, 26, msgs[0].Seq)
	require.EqualValues(t, 35, msgs[9].Seq)

	st, err := s.LoadRoom(ctx, "r")
	require.NoError(t, err)
	require.EqualValues(t, 35, st.Last)
}

func TestEpochDiffersAcrossStores(t *testing.T) {
	a, err := memstore.New(0).LoadRoom(context.Background(), "lobby")
	require.NoError(t, err)
	b, err := memstore.New(0).LoadRoom(context.Background(), "lobby")
	require.NoError(t, err)
	require.NotEqual(t, a.Epoch, b.Epoch, "a restarted memory store must announce a new epoch")
}

func TestReadsCreateNoRoom(t *testing.T) {
	ctx := context.Background()
	s := memstore.New(0)
	for i := range 100 {
		_, err := s.LoadRoom(ctx, fmt.Sprintf("made-up-%d", i))
		require.NoError(t, err)
	}
	require.Zero(t, s.Rooms())
}
