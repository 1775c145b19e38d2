package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/parley-chat/parley/app/api"
	"github.com/parley-chat/parley/server/httpapi"
	"github.com/parley-chat/parley/server/memstore"
	"github.com/parley-chat/parley/server/queue"
	"github.com/parley-chat/parley/server/session"
)

func TestMain(m *testing.M) {
	// measure starts this binary again as its sender process.
	if os.Getenv(senderEnv) != "" {
		if err := runSender(context.Background(), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "sender:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// TestMeasureParleyInProcess runs a small plan against the real handlers in
// this process: every client gets every message once, in order, and the
// figures are filled in. (nginx is not started by any test; make
// bench-peers runs both peers.)
func TestMeasureParleyInProcess(t *testing.T) {
	hub := queue.New(memstore.New(0), queue.Options{})
	a, err := httpapi.New(httpapi.Config{Hub: hub, Sessions: session.NewManager(session.Options{})})
	require.NoError(t, err)
	srv := httptest.NewServer(a.Handler())
	defer func() {
		hub.Drain()
		srv.Close()
		hub.Close()
	}()
	ctx := context.Background()
	sess, err := (&api.Client{Base: srv.URL}).Join(ctx, "smoke")
	require.NoError(t, err)
	addr := strings.TrimPrefix(srv.URL, "http://")
	p := &parleyPeer{host: addr, room: "peers-smoke", token: sess.Token, run: "smoke"}
	// 1 + 5 + 10 messages stay within a session's burst of 20 sends.
	pl := plan{clients: 20, messages: 5, interval: 10 * time.Millisecond, burst: 10, burstFor: 2 * time.Second,
		drain: 10 * time.Second, settle: 300 * time.Millisecond}
	res, err := measure(ctx, &server{addr: addr}, p, pl, t.Logf)
	require.NoError(t, err)
	require.False(t, res.failed(), "%+v", res)
	require.EqualValues(t, 100, res.Deliveries)
	require.Len(t, res.TimeToAllMS, 5)
	require.Positive(t, res.TimeToAllMedian)
	require.Equal(t, 10, res.Burst.Sent)
	require.EqualValues(t, 200, res.Burst.Deliveries)
	require.Zero(t, res.Burst.Lost)
	require.Positive(t, res.Burst.PerSecond)
	require.Zero(t, p.slowReads.Load(), "Parley's answers must be read on the lean path")
}
