package redisstore_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parley-chat/parley/server/internal/redistest"
	"github.com/parley-chat/parley/server/redisstore"
	"github.com/parley-chat/parley/server/session"
	"github.com/parley-chat/parley/server/session/sessiontest"
)

// TestSessionsConformance runs the suite every session store passes, each
// subtest under a prefix of its own on one Redis.
func TestSessionsConformance(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	sessiontest.Run(t, func(t *testing.T) (session.Store, func() string) {
		prefix := fmt.Sprintf("s%d:", prefixes.Add(1))
		s := newStore(t, srv, redisstore.Options{Prefix: prefix})
		return s.Sessions(), func() string { return dumpRedis(t, srv, prefix) }
	})
}

// dumpRedis returns every key under prefix with its serialized value.
func dumpRedis(t *testing.T, srv *redistest.Server, prefix string) string {
	t.Helper()
	rdb := srv.Client()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	require.NoError(t, err)
	var b strings.Builder
	for _, k := range keys {
		v, err := rdb.Dump(ctx, k).Result()
		require.NoError(t, err)
		fmt.Fprintf(&b, "%s %q\n", k, v)
	}
	return b.String()
}

func TestCursorsConformance(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	sessiontest.RunCursors(t, func(t *testing.T) session.CursorStore {
		return newStore(t, srv, redisstore.Options{Prefix: fmt.Sprintf("l%d:", prefixes.Add(1))}).Sessions()
	})
}

// A lookup extends a session only once a quarter of its TTL has passed, so
// that most lookups are reads (no fsync with appendfsync always).
func TestTouchWritesOnlyWhenDue(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	s := newStore(t, srv, redisstore.Options{}).Sessions()
	hash := session.TokenHash("tok")
	_, err := s.CreateSession(ctx, session.Record{Hash: hash, Name: "ann"}, time.Now(), time.Minute)
	require.NoError(t, err)
	rdb := srv.Client()
	require.NoError(t, rdb.PExpire(ctx, "parley:sess:"+hash, 50*time.Second).Err())
	_, ok, err := s.TouchSession(ctx, hash, time.Now(), time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	require.LessOrEqual(t, rdb.PTTL(ctx, "parley:sess:"+hash).Val(), 50*time.Second, "not due: left alone")
	require.NoError(t, rdb.PExpire(ctx, "parley:sess:"+hash, 40*time.Second).Err())
	_, ok, err = s.TouchSession(ctx, hash, time.Now(), time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	require.Greater(t, rdb.PTTL(ctx, "parley:sess:"+hash).Val(), 55*time.Second, "due: extended")
	require.Greater(t, rdb.PTTL(ctx, "parley:name:ann").Val(), 55*time.Second, "the name with it")
}
