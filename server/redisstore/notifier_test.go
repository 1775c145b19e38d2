package redisstore_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/parley-chat/parley/server/internal/redistest"
	"github.com/parley-chat/parley/server/redisstore"
	"github.com/parley-chat/parley/shared"
)

// Probe timings for tests: a wedge must be noticed within their sum.
const (
	probeInterval = 100 * time.Millisecond
	probeTimeout  = 300 * time.Millisecond
)

// listener runs a Notifier for the test and records what it delivers.
type listener struct {
	n       *redisstore.Notifier
	notes   chan redisstore.Notification
	mu      sync.Mutex
	resyncs int
}

func listen(t *testing.T, rdb *redis.Client) *listener {
	t.Helper()
	return listenWith(t, func(opt redisstore.NotifierOptions) *redisstore.Notifier { return redisstore.NewNotifier(rdb, opt) })
}

func listenWith(t *testing.T, newNotifier func(redisstore.NotifierOptions) *redisstore.Notifier) *listener {
	t.Helper()
	l := &listener{notes: make(chan redisstore.Notification, 1000)}
	l.n = newNotifier(redisstore.NotifierOptions{
		OnNotify: func(n redisstore.Notification) { l.notes <- n },
		OnResync: func() {
			l.mu.Lock()
			l.resyncs++
			l.mu.Unlock()
		},
		ProbeInterval: probeInterval,
		ProbeTimeout:  probeTimeout,
		MinBackoff:    20 * time.Millisecond,
		MaxBackoff:    200 * time.Millisecond,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.ErrorIs(t, err, context.Canceled)
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
	require.Eventually(t, l.n.Healthy, 5*time.Second, 5*time.Millisecond, "subscribed")
	return l
}

func (l *listener) resyncCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.resyncs
}

// next waits for a notification.
func (l *listener) next(t *testing.T, within time.Duration) redisstore.Notification {
	t.Helper()
	select {
	case n := <-l.notes:
		return n
	case <-time.After(within):
		t.Fatalf("no notification within %v", within)
		return redisstore.Notification{}
	}
}

var calls atomic.Int64

// deliveredAgain appends to room until l is notified of one of those
// messages (not of an earlier one still in flight), which proves delivery
// resumed; it returns how long that took.
func deliveredAgain(t *testing.T, s *redisstore.Store, l *listener, room string, within time.Duration) time.Duration {
	t.Helper()
	mark := fmt.Sprintf("call %d:", calls.Add(1))
	start := time.Now()
	for i := 0; time.Since(start) < within; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := s.Append(ctx, []shared.Message{text(room, "a", fmt.Sprint(mark, " try ", i), "")})
		cancel()
		if err == nil {
			wait := time.After(50 * time.Millisecond)
		drain:
			for {
				select {
				case n := <-l.notes:
					if n.Room == room && strings.HasPrefix(n.Message.Text, mark) {
						return time.Since(start)
					}
				case <-wait:
					break drain
				}
			}
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Fatalf("delivery did not resume within %v", within)
	return 0
}

// A message appended through one store is announced to the notifiers of
// every process, with the stored message, its seq and its room's epoch.
func TestNotifyAcrossStores(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	a, b := newStore(t, srv, redisstore.Options{}), newStore(t, srv, redisstore.Options{})
	la, lb := listen(t, a.Client()), listen(t, b.Client())
	other := newStore(t, srv, redisstore.Options{Prefix: "other:"})

	res, err := a.Append(ctx, []shared.Message{text("lobby", "ann", "hello \"you\" / é", "c1"), text("lobby", "ann", "again", "c1")})
	require.NoError(t, err)
	_, err = other.Append(ctx, []shared.Message{text("lobby", "x", "another deployment", "")})
	require.NoError(t, err)
	st, err := b.LoadRoom(ctx, "lobby")
	require.NoError(t, err)
	for _, l := range []*listener{la, lb} {
		n := l.next(t, 2*time.Second)
		require.Equal(t, redisstore.Notification{Room: "lobby", Epoch: st.Epoch, Seq: 1, Message: res[0].Message}, n)
		select {
		case n := <-l.notes:
			t.Fatalf("unexpected notification %+v: duplicates and other prefixes are not announced", n)
		case <-time.After(3 * probeInterval):
		}
		require.GreaterOrEqual(t, l.resyncCount(), 1, "a resync at the start")
	}
}

// CLIENT KILL TYPE pubsub drops the subscription from Redis's side; the
// notifier subscribes again, asks for a resync, and delivery resumes.
func TestResumesAfterClientKill(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := newStore(t, srv, redisstore.Options{})
	l := listen(t, newStore(t, srv, redisstore.Options{}).Client())
	deliveredAgain(t, s, l, "r", 2*time.Second)

	require.EqualValues(t, 1, srv.Do("CLIENT", "KILL", "TYPE", "pubsub"))
	took := deliveredAgain(t, s, l, "r", 5*time.Second)
	require.Less(t, took, probeInterval+probeTimeout+time.Second)
	require.Eventually(t, func() bool { return l.resyncCount() >= 2 }, time.Second, 5*time.Millisecond)
	require.True(t, l.n.Healthy())
}

// A subscriber connection that wedges, while PUBLISH keeps succeeding, is
// found by the probe and rebuilt: the failure pub/sub servers have shown
// after failovers (sends accepted, health green, nothing delivered).
func TestResumesAfterWedgedConnection(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	proxy := redistest.NewProxy(t, srv)
	s := newStore(t, srv, redisstore.Options{})
	// Only the notifier goes through the proxy; the store's appends and
	// publishes reach Redis directly and keep succeeding.
	viaProxy := redis.NewClient(&redis.Options{Addr: proxy.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = viaProxy.Close() })
	l := listen(t, viaProxy)
	deliveredAgain(t, s, l, "r", 2*time.Second)

	proxy.Freeze()
	ctx := context.Background()
	_, err := s.Append(ctx, []shared.Message{text("r", "a", "into the void", "")})
	require.NoError(t, err, "publishing still succeeds")
	// Healthy is false only from the overdue probe to the new subscription,
	// a few milliseconds here; Err keeps the reason.
	require.Eventually(t, func() bool {
		err := l.n.Err()
		return err != nil && strings.Contains(err.Error(), "wedged")
	}, 5*time.Second, 5*time.Millisecond, "the wedge is noticed by the probe") // 0.4 s on an idle machine; -race under load stretches it
	took := deliveredAgain(t, s, l, "r", 5*time.Second)
	require.Less(t, took, probeInterval+probeTimeout+2*time.Second)
	require.GreaterOrEqual(t, l.resyncCount(), 2, "the consumer is told to refill what it missed")
}

// Redis stopped: the notifier reports unhealthy and retries with backoff;
// restarted: it subscribes again and delivery resumes.
func TestResumesAfterRedisRestart(t *testing.T) {
	for _, aof := range []bool{false, true} {
		t.Run(fmt.Sprint("aof=", aof), func(t *testing.T) {
			srv := redistest.Start(t, redistest.Options{AOF: aof})
			s := newStore(t, srv, redisstore.Options{})
			l := listen(t, newStore(t, srv, redisstore.Options{}).Client())
			deliveredAgain(t, s, l, "r", 2*time.Second)

			srv.Kill()
			require.Eventually(t, func() bool { return !l.n.Healthy() }, 2*(probeInterval+probeTimeout), 5*time.Millisecond)
			time.Sleep(300 * time.Millisecond) // a few failed attempts
			require.False(t, l.n.Healthy())
			require.Error(t, l.n.Err())
			srv.Restart()
			deliveredAgain(t, s, l, "r", 5*time.Second)
			require.True(t, l.n.Healthy())
			require.GreaterOrEqual(t, l.resyncCount(), 2)
		})
	}
}

// Run returns when its context ends, even while Redis is unreachable and
// it is backing off, and a second Run at once is refused.
func TestRunStops(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	rdb := srv.Client()
	n := redisstore.NewNotifier(rdb, redisstore.NotifierOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	require.Eventually(t, n.Healthy, 5*time.Second, 5*time.Millisecond)
	require.ErrorIs(t, n.Run(ctx), redisstore.ErrRunning)
	srv.Kill()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	require.False(t, n.Healthy())
}

// Notifications of a room arrive in seq order, whichever process appended:
// the script publishes inside the append, and Redis delivers one
// connection's messages in the order it published them.
func TestNotificationsInSeqOrder(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	a, b := newStore(t, srv, redisstore.Options{Prefix: "o:"}), newStore(t, srv, redisstore.Options{Prefix: "o:"})
	l := listenWith(t, b.NewNotifier)
	const perStore = 200
	var wg sync.WaitGroup
	for _, s := range []*redisstore.Store{a, b} {
		wg.Go(func() {
			for i := range perStore {
				if _, err := s.Append(ctx, []shared.Message{text(fmt.Sprint("room", i%2), "a", "x", "")}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	next := map[string]uint64{"room0": 1, "room1": 1}
	for range 2 * perStore {
		n := l.next(t, 5*time.Second)
		require.Equal(t, next[n.Room], n.Seq, "room %s", n.Room)
		require.Equal(t, n.Seq, n.Message.Seq)
		next[n.Room]++
	}
}
