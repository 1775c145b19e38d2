package boltstore_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parley-chat/parley/server/session"
	"github.com/parley-chat/parley/server/session/sessiontest"
)

func TestSessionsConformance(t *testing.T) {
	sessiontest.Run(t, func(t *testing.T) (session.Store, func() string) {
		path := filepath.Join(t.TempDir(), "p.db")
		s := open(t, path)
		t.Cleanup(func() { require.NoError(t, s.Close()) })
		ss, err := s.Sessions(time.Now(), time.Minute, 30*time.Second)
		require.NoError(t, err)
		return ss, func() string {
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			return string(b)
		}
	})
}

// A restart keeps sessions and presence: the token still works, the name
// is still taken, and a presence renewed after the restart is no new join.
// Expired sessions and ended presence are gone from the file.
func TestSessionsSurviveReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "p.db")
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	s := open(t, path)
	ss, err := s.Sessions(now, time.Minute, 30*time.Second)
	require.NoError(t, err)
	keep := session.Record{Hash: session.TokenHash("keep"), Name: "Keep"}
	gone := session.Record{Hash: session.TokenHash("gone"), Name: "Gone"}
	for _, r := range []session.Record{keep, gone} {
		taken, err := ss.CreateSession(ctx, r, now, time.Minute)
		require.NoError(t, err)
		require.False(t, taken)
	}
	_, err = ss.Present(ctx, []session.Lease{
		{Room: "lobby", Name: "Keep", Since: now, Until: now.Add(30 * time.Second)},
		{Room: "lobby", Name: "Gone", Since: now, Until: now.Add(30 * time.Second)},
	})
	require.NoError(t, err)
	_, ok, err := ss.EndSession(ctx, gone.Hash)
	require.NoError(t, err)
	require.True(t, ok)
	rooms, err := ss.LeaveAll(ctx, "Gone")
	require.NoError(t, err)
	require.Equal(t, []string{"lobby"}, rooms)
	require.NoError(t, s.Close())

	later := now.Add(time.Hour) // long after every TTL: a restart gives a full one
	s = open(t, path)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	ss, err = s.Sessions(later, time.Minute, 30*time.Second)
	require.NoError(t, err)
	name, ok, err := ss.TouchSession(ctx, keep.Hash, later, time.Minute)
	require.NoError(t, err)
	require.True(t, ok, "the token still works")
	require.Equal(t, "Keep", name)
	_, ok, err = ss.TouchSession(ctx, gone.Hash, later, time.Minute)
	require.NoError(t, err)
	require.False(t, ok)
	taken, err := ss.CreateSession(ctx, session.Record{Hash: session.TokenHash("x"), Name: "keep"}, later, time.Minute)
	require.NoError(t, err)
	require.True(t, taken, "the name is still taken")

	joined, err := ss.Present(ctx, []session.Lease{{Room: "lobby", Name: "Keep", Since: later, Until: later.Add(30 * time.Second)}})
	require.NoError(t, err)
	require.Equal(t, []bool{false}, joined, "still present: no second join")
	ms, err := ss.Members(ctx, "lobby")
	require.NoError(t, err)
	require.Len(t, ms, 1)
	require.True(t, now.Equal(ms[0].Since), "present since before the restart")

	// Idle past the TTL: a sweep forgets the session on file too.
	_, err = ss.Expire(ctx, later.Add(2*time.Minute))
	require.NoError(t, err)
	require.NoError(t, s.Close())
	s = open(t, path)
	ss, err = s.Sessions(later, time.Minute, 30*time.Second)
	require.NoError(t, err)
	_, ok, err = ss.TouchSession(ctx, keep.Hash, later, time.Minute)
	require.NoError(t, err)
	require.False(t, ok)
	ms, err = ss.Members(ctx, "lobby")
	require.NoError(t, err)
	require.Empty(t, ms)
}

func TestCursorsConformance(t *testing.T) {
	sessiontest.RunCursors(t, func(t *testing.T) session.CursorStore {
		s := open(t, filepath.Join(t.TempDir(), "p.db"))
		t.Cleanup(func() { require.NoError(t, s.Close()) })
		return s.Cursors()
	})
}
