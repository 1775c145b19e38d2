package lesson_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	apiclient "github.com/parley-chat/parley/app/api"
	"github.com/parley-chat/parley/app/lesson"
	"github.com/parley-chat/parley/server/httpapi"
	"github.com/parley-chat/parley/server/memstore"
	"github.com/parley-chat/parley/server/queue"
	"github.com/parley-chat/parley/server/session"
	"github.com/parley-chat/parley/shared"
	"github.com/stretchr/testify/require"
)

// The three clients against the real HTTP API: every message reaches each
// once, short polling asks far more often, and stopping them releases the
// server's held polls.
func TestClientsAgainstTheServer(t *testing.T) {
	hub := queue.New(memstore.New(1000), queue.Options{})
	t.Cleanup(hub.Close)
	sessions := session.NewManager(session.Options{MaxHeld: 100})
	api, err := httpapi.New(httpapi.Config{Hub: hub, Sessions: sessions})
	require.NoError(t, err)
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)

	var mu sync.Mutex
	b := lesson.NewBoard("learn-test01")
	board := func(f func(*lesson.Board)) {
		mu.Lock()
		defer mu.Unlock()
		f(b)
	}
	jar, _ := cookiejar.New(nil)
	// As the page runs them: a room and a session of their own.
	const room = "learn-room01"
	joined, err := (&apiclient.Client{Base: srv.URL}).Join(context.Background(), b.Name)
	require.NoError(t, err)
	cl := &lesson.Clients{
		Base: srv.URL, HTTP: &http.Client{Jar: jar}, Name: b.Name, Room: room, Token: joined.Token,
		Interval: func() time.Duration { return 300 * time.Millisecond },
		LongWait: 5, Apply: board,
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, run := range []func(context.Context){cl.RunShort, cl.RunLong, cl.RunTextbook} {
		wg.Add(1)
		go func() { defer wg.Done(); run(ctx) }()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	require.Eventually(t, func() (ok bool) {
		board(func(b *lesson.Board) { ok = b.AllReady() })
		return ok
	}, 5*time.Second, 10*time.Millisecond)
	// Someone else's message in the room, before the page's.
	post := func(text string) {
		var id int
		board(func(b *lesson.Board) { id = b.Send(text) })
		require.NoError(t, cl.Post(ctx, id, text))
	}
	other := &lesson.Clients{Base: srv.URL, Name: "bob", Room: room, Apply: func(func(*lesson.Board)) {}}
	require.NoError(t, other.Post(ctx, 0, "hello from bob"))
	for i := 1; i <= 3; i++ {
		post(fmt.Sprintf("m%d", i))
	}
	require.Eventually(t, func() (ok bool) {
		board(func(b *lesson.Board) {
			ok = true
			for _, c := range b.Columns {
				ok = ok && c.Received == 3 && c.Other == 1
			}
		})
		return ok
	}, 8*time.Second, 20*time.Millisecond)
	time.Sleep(time.Second)
	require.Eventually(t, func() bool { return api.HeldPolls() == 2 }, 2*time.Second, 10*time.Millisecond,
		"the long poll and the textbook's are held")
	// Short polling goes on asking while the long poll waits (on a loaded
	// machine its 300 ms ticks may fall behind at first, hence Eventually).
	require.Eventually(t, func() (ok bool) {
		board(func(b *lesson.Board) { ok = b.Columns[lesson.Short].Requests > b.Columns[lesson.Long].Requests })
		return ok
	}, 5*time.Second, 20*time.Millisecond, "short polling makes more requests than long polling")
	board(func(b *lesson.Board) {
		for _, c := range b.Columns {
			require.Zero(t, c.Duplicates, c.Mode)
			require.Zero(t, c.Errors, c.Mode)
			require.Equal(t, 3, c.Delayed, c.Mode)
			require.Positive(t, c.Bytes, c.Mode)
		}
		require.Positive(t, b.Columns[lesson.Short].Empty)
		require.Equal(t, 4, b.Columns[lesson.Textbook].Requests-b.Columns[lesson.Textbook].Empty, "one message per answer, bob's included")
	})
	cancel()
	wg.Wait()
	require.Eventually(t, func() bool { return api.HeldPolls() == 0 }, 2*time.Second, 10*time.Millisecond,
		"stopping the clients releases their polls")
	lobby, err := (&apiclient.Client{Base: srv.URL}).Poll(context.Background(), "", "lobby", shared.PollRequest{})
	require.NoError(t, err)
	require.Empty(t, lobby.Messages, "nothing the page does shows up in anybody's chat")
}
