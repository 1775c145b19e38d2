package chat_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/app/chat"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// browser is what tabs of one browser share.
type browser struct {
	store *chat.MemStorage
	bus   *chat.MemBus
	locks *chat.MemLocker
}

func newBrowser() browser {
	return browser{chat.NewMemStorage(), chat.NewMemBus(), chat.NewMemLocker()}
}

// sessions is a page's session owner: one per tab, over the shared storage.
func (b browser) sessions() *chat.Sessions { return chat.NewSessions(b.store, b.locks) }

type tab struct {
	s      *chat.Syncer
	cancel context.CancelFunc
	done   chan struct{}
}

func (b browser) open(t *testing.T, srv *fakeServer) *tab {
	t.Helper()
	return b.openAPI(t, srv, 2)
}

// openAPI starts a tab's Syncer for lobby on server, polling pollWait seconds.
func (b browser) openAPI(t *testing.T, server chat.API, pollWait int) *tab {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tb := &tab{cancel: cancel, done: make(chan struct{})}
	tb.s = chat.NewSyncer(chat.Config{
		Room: "lobby", API: server, Store: b.store, Sessions: b.sessions(), Bus: b.bus, Locks: b.locks,
		PollWait: pollWait, BackoffBase: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
	})
	go func() {
		defer close(tb.done)
		tb.s.Run(ctx)
	}()
	t.Cleanup(tb.close)
	return tb
}

func (tb *tab) close() {
	tb.cancel()
	<-tb.done
}

func texts(v chat.View) []string {
	var out []string
	for _, e := range v.Entries {
		out = append(out, e.Text)
	}
	return out
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 5*time.Second, 5*time.Millisecond, what)
}

func join(t *testing.T, b browser, srv *fakeServer, name string) {
	t.Helper()
	resp, err := srv.Join(context.Background(), name)
	require.NoError(t, err)
	require.NoError(t, b.sessions().Save(chat.Session{Name: resp.Name, Token: resp.Token}))
}

func TestTabsShareOneLongPollAndAllReceive(t *testing.T) {
	srv := newFakeServer()
	b := newBrowser()
	join(t, b, srv, "alice")
	var tabs []*tab
	for i := 0; i < 8; i++ {
		tabs = append(tabs, b.open(t, srv))
	}
	for i := 0; i < 5; i++ {
		srv.post("bob", "hello")
	}
	for i, tb := range tabs {
		eventually(t, "tab sees all messages", func() bool { return len(tb.s.View(0).Entries) == 5 })
		leaders := 0
		for _, x := range tabs {
			if x.s.View(0).Leader {
				leaders++
			}
		}
		require.Equal(t, 1, leaders, "tab %d: exactly one leader", i)
	}
	// The five messages may all come in answers that were not held; the
	// leader's next poll is held, and never alongside another.
	eventually(t, "the leader holds a poll", func() bool { return srv.peakHolding() >= 1 })
	require.Equal(t, 1, srv.peakHolding(), "one held poll for the whole browser")

	// The leader goes away: another tab takes over and keeps receiving.
	var leader *tab
	for _, tb := range tabs {
		if tb.s.View(0).Leader {
			leader = tb
		}
	}
	leader.close()
	srv.post("bob", "after handover")
	for _, tb := range tabs {
		if tb == leader {
			continue
		}
		eventually(t, "handover", func() bool { return len(tb.s.View(0).Entries) == 6 })
	}
	require.Equal(t, 1, srv.peakHolding())
}

func TestSendFromFollowerIsSentOnceByLeader(t *testing.T) {
	srv := newFakeServer()
	srv.sendDelay = 300 * time.Millisecond
	b := newBrowser()
	join(t, b, srv, "alice")
	t1 := b.open(t, srv)
	eventually(t, "leader", func() bool { return t1.s.View(0).Conn == chat.Connected })
	t2 := b.open(t, srv)
	eventually(t, "follower", func() bool { return !t2.s.View(0).Leader && t2.s.View(0).Conn == chat.Connected })

	it, err := t2.s.Send("  hi there  ")
	require.NoError(t, err)
	// At once pending in the sending tab.
	v := t2.s.View(0)
	require.Len(t, v.Outbox, 1)
	require.Equal(t, it.ID, v.Outbox[0].ID)
	for _, tb := range []*tab{t1, t2} {
		eventually(t, "sent", func() bool {
			v := tb.s.View(0)
			return len(v.Outbox) == 0 && len(v.Entries) == 1 && v.Entries[0].ClientMsgID == it.ID
		})
	}
	require.Equal(t, []string{"  hi there  "}, srv.texts())

	_, err = t2.s.Send("   ")
	require.Error(t, err, "blank text is refused before it is queued")
	require.Empty(t, t2.s.View(0).Outbox)
}

func TestOfflineOutboxDeliveredExactlyOnceAfterRestart(t *testing.T) {
	srv := newFakeServer()
	b := newBrowser()
	join(t, b, srv, "alice")
	srv.post("bob", "before")
	tb := b.open(t, srv)
	eventually(t, "history", func() bool { return len(tb.s.View(0).Entries) == 1 })
	_, err := tb.s.Send("mine")
	require.NoError(t, err)
	eventually(t, "own message", func() bool { return len(tb.s.View(0).Entries) == 2 })
	// The poll that follows the send brings it again: that must still
	// reach the cache.
	time.Sleep(100 * time.Millisecond)
	tb.close()

	// The server goes away (a restart loses sessions); the page reloads.
	srv.setDown(true)
	tb = b.open(t, srv)
	eventually(t, "cached history shows while the server is down", func() bool {
		return slices.Equal(texts(tb.s.View(0)), []string{"before", "mine"})
	})
	eventually(t, "offline", func() bool { return tb.s.View(0).Conn == chat.Offline })
	_, err = tb.s.Send("queued 1")
	require.NoError(t, err)
	_, err = tb.s.Send("queued 2")
	require.NoError(t, err)
	require.Len(t, tb.s.View(0).Outbox, 2)

	srv.setDown(false)
	tb.s.Wake()
	eventually(t, "delivered", func() bool {
		v := tb.s.View(0)
		return v.Conn == chat.Connected && len(v.Outbox) == 0 && len(v.Entries) == 4
	})
	require.Equal(t, []string{"before", "mine", "queued 1", "queued 2"}, srv.texts(), "in order, once each")
	s, _ := b.sessions().Get()
	require.Equal(t, "alice", s.Name, "joined again under the same name")
}

func TestLostAckIsResentWithSameIDAndNotDuplicated(t *testing.T) {
	srv := newFakeServer()
	srv.dropAcks = 1
	b := newBrowser()
	join(t, b, srv, "alice")
	tb := b.open(t, srv)
	_, err := tb.s.Send("once")
	require.NoError(t, err)
	eventually(t, "acknowledged", func() bool {
		v := tb.s.View(0)
		return len(v.Outbox) == 0 && len(v.Entries) == 1
	})
	require.Equal(t, []string{"once"}, srv.texts())
}

func TestNameTakenOnRejoinAsksForAName(t *testing.T) {
	srv := newFakeServer()
	b := newBrowser()
	require.NoError(t, b.sessions().Save(chat.Session{Name: "alice", Token: "stale"}))
	_, err := srv.Join(context.Background(), "alice") // someone else holds it now
	require.NoError(t, err)
	tb := b.open(t, srv)
	eventually(t, "need join", func() bool { return tb.s.View(0).NeedJoin == "name_taken" })
}

func TestReloadShowsNoDuplicates(t *testing.T) {
	srv := newFakeServer()
	b := newBrowser()
	join(t, b, srv, "alice")
	for i := 0; i < 3; i++ {
		srv.post("bob", "m")
	}
	tb := b.open(t, srv)
	eventually(t, "3", func() bool { return len(tb.s.View(0).Entries) == 3 })
	tb.close()
	srv.post("bob", "new")
	tb = b.open(t, srv)
	eventually(t, "4", func() bool { return len(tb.s.View(0).Entries) == 4 })
	time.Sleep(50 * time.Millisecond)
	var seen []uint64
	for _, e := range tb.s.View(0).Entries {
		seen = append(seen, e.Seq)
	}
	require.Equal(t, []uint64{1, 2, 3, 4}, seen)
}

func TestLoadOlderAndWindow(t *testing.T) {
	srv := newFakeServer()
	b := newBrowser()
	join(t, b, srv, "alice")
	for i := 0; i < 1000; i++ {
		srv.post("bob", "m")
	}
	tb := b.open(t, srv)
	eventually(t, "latest page", func() bool { return len(tb.s.View(0).Entries) == 100 })
	v := tb.s.View(40)
	require.Len(t, v.Entries, 40)
	require.Equal(t, 60, v.Hidden)
	require.True(t, v.MoreOnServer)
	n, err := tb.s.LoadOlder(context.Background(), 50)
	require.NoError(t, err)
	require.Equal(t, 50, n)
	v = tb.s.View(0)
	require.EqualValues(t, 851, v.Entries[0].Seq)
}

func TestManyConcurrentSendersNoLossNoDup(t *testing.T) {
	srv := newFakeServer()
	b := newBrowser()
	join(t, b, srv, "alice")
	var tabs []*tab
	for i := 0; i < 3; i++ {
		tabs = append(tabs, b.open(t, srv))
	}
	var wg sync.WaitGroup
	for i, tb := range tabs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 10; j++ {
				_, err := tb.s.Send("x")
				require.NoError(t, err)
				_ = i
			}
		}()
	}
	wg.Wait()
	for _, tb := range tabs {
		eventually(t, "all 30", func() bool {
			v := tb.s.View(0)
			return len(v.Entries) == 30 && len(v.Outbox) == 0
		})
	}
	require.Len(t, srv.texts(), 30)
}

// The UI gets each change as a View on Updates, and a reader that falls
// behind gets the newest View, not a backlog.
func TestUpdatesCoalesceToTheNewestView(t *testing.T) {
	srv := newFakeServer()
	b := newBrowser()
	join(t, b, srv, "alice")
	tb := b.open(t, srv)
	tb.s.SetWindow(3)
	for i := 0; i < 20; i++ {
		srv.post("bob", "m")
	}
	eventually(t, "all held", func() bool { return len(tb.s.View(0).Entries) == 20 })
	time.Sleep(50 * time.Millisecond)
	var v chat.View
	eventually(t, "a view with the newest window", func() bool {
		select {
		case v = <-tb.s.Updates():
		case <-time.After(100 * time.Millisecond):
		}
		return len(v.Entries) == 3 && v.Entries[2].Seq == 20 && v.Hidden == 17
	})
	select {
	case <-tb.s.Updates():
		t.Fatal("no backlog after the newest view")
	case <-time.After(100 * time.Millisecond):
	}
}

// Each costly step of the leader (applying an answer, broadcasting it,
// writing the cache) first asks Config.Yield for its turn; the page's
// pacer makes each a browser task of its own.
func TestLeaderYieldsBeforeCostlySteps(t *testing.T) {
	srv := newFakeServer()
	b := newBrowser()
	join(t, b, srv, "alice")
	var mu sync.Mutex
	yields := 0
	ctx, cancel := context.WithCancel(context.Background())
	s := chat.NewSyncer(chat.Config{
		Room: "lobby", API: srv, Store: b.store, Sessions: b.sessions(), Bus: b.bus, Locks: b.locks,
		PollWait: 2, Yield: func() { mu.Lock(); yields++; mu.Unlock() },
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	defer func() { cancel(); <-done }()
	eventually(t, "leading", func() bool { return s.View(0).Leader })
	mu.Lock()
	before := yields
	mu.Unlock()
	srv.post("bob", "hello")
	eventually(t, "delivered", func() bool { return len(s.View(0).Entries) == 1 })
	eventually(t, "yielded for apply, broadcast and cache", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return yields-before >= 3
	})
}
