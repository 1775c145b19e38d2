package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"

	"github.com/parley-chat/parley/server/internal/redistest"
	"github.com/parley-chat/parley/shared"
)

// TestMadeUpRoomsLeaveNoTrace is issue 8's report, against the binary:
// with -max-rooms 8, seven anonymous GETs of made-up rooms locked every new
// room out until restart, and with bbolt each wrote a bucket for good.
func TestMadeUpRoomsLeaveNoTrace(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "parley.db")
	p := startParley(t, "-store", "bolt", "-data", data, "-addr", "127.0.0.1:0", "-web", dir, "-max-rooms", "8")
	hc := newClient(t)
	for i := range 100 {
		_, status, err := poll(context.Background(), hc, p.url, fmt.Sprintf("made-up-%d", i), shared.PollRequest{})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status)
	}
	require.Zero(t, metric(t, strings.TrimPrefix(p.url, "http://"), "parley_rooms_in_memory"))

	tok := createSession(t, hc, p.url, "real")
	r := send(context.Background(), hc, func() string { return p.url }, tok, "a-real-room", "hello", "")
	require.NoError(t, r.err)
	require.Equal(t, http.StatusCreated, r.status)
	p.kill()

	db, err := bolt.Open(data, 0o600, &bolt.Options{ReadOnly: true})
	require.NoError(t, err)
	defer db.Close()
	var rooms []string
	require.NoError(t, db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("rooms")).ForEach(func(k, _ []byte) error { rooms = append(rooms, string(k)); return nil })
	}))
	require.Equal(t, []string{"a-real-room"}, rooms)
}

// The room creation limit holds across instances: one address creating
// rooms through two instances gets the burst once (10), not once each.
func TestRedisRoomCreationLimitAcrossInstances(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	args := []string{"-store", "redis", "-redis", srv.URL(), "-addr", "127.0.0.1:0", "-web", t.TempDir(), "-room-rate", "0.01"}
	a, b := startParley(t, args...), startParley(t, args...)
	hc := newClient(t)
	tok := createSession(t, hc, a.url, "founder")
	created, limited := sendAlternately(t, hc, tok, 30, func(i int) (string, string) {
		return fmt.Sprintf("%s/api/rooms/new-%d/messages", []string{a.url, b.url}[i%2], i), "first"
	})
	require.Equal(t, 10, created, "a burst of 10, not 10 per instance")
	require.Equal(t, 20, limited)
}
