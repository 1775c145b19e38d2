package main

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parley-chat/parley/server/boltstore"
	"github.com/parley-chat/parley/shared"
)

// TestBoltRetentionRunsFromTheStart: a file holding 30 messages in a room
// is trimmed to -retain-messages by the server's own upkeep, and a reader
// from the start gets the oldest kept with a gap.
func TestBoltRetentionRunsFromTheStart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "p.db")
	bs, err := boltstore.Open(path)
	require.NoError(t, err)
	st, err := bs.LoadRoom(ctx, "lobby")
	require.NoError(t, err)
	for i := range 30 {
		_, err := bs.Append(ctx, []shared.Message{{Room: "lobby", Kind: shared.KindText, Author: "a", Text: fmt.Sprint(i), SentAt: time.Now()}})
		require.NoError(t, err)
	}
	require.NoError(t, bs.Close())

	// -history 5: the room's memory holds the newest five, so a read from
	// the start goes to the file.
	p := startInProcess(t, []string{"-addr", "127.0.0.1:0", "-data", path, "-web", dir, "-history", "5", "-retain-messages", "10"}, nil)
	base := "http://" + p.addr
	waitHealthy(t, base)
	hc := newClient(t)
	zero, wait := uint64(0), 0
	var got shared.PollResponse
	require.Eventually(t, func() bool {
		got, _, err = poll(ctx, hc, base, "lobby", shared.PollRequest{After: &zero, Epoch: st.Epoch, Wait: &wait})
		return err == nil && len(got.Messages) > 0 && got.Messages[0].Seq == 21
	}, 5*time.Second, 20*time.Millisecond, "last answer: %+v, %v", got, err)
	require.True(t, got.Gap)
	require.Len(t, got.Messages, 10)
	hc.CloseIdleConnections()
	p.stop(t)
}
