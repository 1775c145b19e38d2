package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parley-chat/parley/server/internal/redistest"
	"github.com/parley-chat/parley/server/queue"
	"github.com/parley-chat/parley/server/redisstore"
	"github.com/parley-chat/parley/shared"
)

// instance is one Parley process's core on a shared Redis: its own client,
// store, hub and notifier, as cmd/parley wires them.
type instance struct {
	store    *redisstore.Store
	hub      *queue.Hub
	notifier *redisstore.Notifier
}

// startInstance starts an instance on srv; sync is the hub's SyncInterval,
// long when a test must see notifications do the work.
func startInstance(t testing.TB, srv *redistest.Server, sync time.Duration) *instance {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := newStore(t, srv, redisstore.Options{})
	hub := queue.New(s, queue.Options{History: 100, SyncInterval: sync, Logger: log})
	n := s.NewHubNotifier(hub, redisstore.NotifierOptions{
		ProbeInterval: probeInterval, ProbeTimeout: probeTimeout,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Logger: log,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		hub.Close()
	})
	require.Eventually(t, func() bool { return n.Ready() == nil }, 5*time.Second, 5*time.Millisecond, "subscribed")
	return &instance{store: s, hub: hub, notifier: n}
}

const longSync = time.Hour

func (in *instance) send(t *testing.T, room, author, body, id string) (shared.Message, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, dup, err := in.hub.Append(ctx, shared.Message{Room: room, Kind: shared.KindText, Author: author, Text: body, ClientMsgID: id})
	require.NoError(t, err)
	return m, dup
}

// read is one poll of room at (epoch, after), waiting up to wait.
func (in *instance) read(t *testing.T, room, epoch string, after uint64, wait time.Duration) *queue.Page {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait+10*time.Second)
	defer cancel()
	p, err := in.hub.Read(ctx, room, queue.Query{After: &after, Epoch: epoch, Limit: shared.MaxLimit, Wait: wait})
	require.NoError(t, err)
	return p
}

func (in *instance) head(t *testing.T, room string) (string, uint64) {
	t.Helper()
	p, err := in.hub.Read(context.Background(), room, queue.Query{Limit: 1})
	require.NoError(t, err)
	return p.Epoch, p.Next
}

// heldRead starts a read held at (epoch, after) and returns where its page
// will come.
func (in *instance) heldRead(t *testing.T, room, epoch string, after uint64) <-chan *queue.Page {
	t.Helper()
	out := make(chan *queue.Page, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	go func() {
		p, err := in.hub.Read(ctx, room, queue.Query{After: &after, Epoch: epoch, Limit: shared.MaxLimit, Wait: 20 * time.Second})
		if err != nil {
			p = nil
		}
		out <- p
	}()
	return out
}

func within(t *testing.T, ch <-chan *queue.Page, d time.Duration) *queue.Page {
	t.Helper()
	select {
	case p := <-ch:
		require.NotNil(t, p, "read failed")
		return p
	case <-time.After(d):
		t.Fatalf("no answer within %v", d)
		return nil
	}
}

// A message sent through A wakes a poll held on B at once, by the
// notification (B's periodic check is an hour away).
func TestHubDeliversAcrossInstances(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a := startInstance(t, srv, longSync)
	b := startInstance(t, srv, longSync)
	epoch, last := b.head(t, "lobby")
	a.head(t, "lobby")
	time.Sleep(100 * time.Millisecond) // b's check of the room it loaded

	held := b.heldRead(t, "lobby", epoch, last)
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	m, _ := a.send(t, "lobby", "ann", "hello from a", "")
	p := within(t, held, 2*time.Second)
	t.Logf("cross-instance delivery took %v", time.Since(start))
	require.Equal(t, epoch, p.Epoch)
	require.Len(t, p.Messages, 1)
	require.Equal(t, m, p.Messages[0])

	// And back, B to A.
	held = a.heldRead(t, "lobby", epoch, m.Seq)
	time.Sleep(50 * time.Millisecond)
	m2, _ := b.send(t, "lobby", "bob", "hello from b", "")
	require.Equal(t, []shared.Message{m2}, within(t, held, 2*time.Second).Messages)
}

// Senders on both instances at once, pollers that change instance on every
// poll: every message is read by every poller exactly once, in dense seq
// order, and the seqs the senders were given are exactly those.
func TestHubConcurrentSendersOnTwoInstances(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ins := []*instance{startInstance(t, srv, time.Second), startInstance(t, srv, time.Second)}
	const senders, each = 6, 60
	const total = senders * each
	epoch, _ := ins[0].head(t, "busy")
	ins[1].head(t, "busy")

	type got struct {
		seqs []uint64
		err  error
	}
	var wg sync.WaitGroup
	results := make(chan got, 3)
	for p := range 3 {
		wg.Go(func() {
			var g got
			next := uint64(0)
			for i := 0; len(g.seqs) < total; i++ {
				in := ins[(p+i)%2]
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				page, err := in.hub.Read(ctx, "busy", queue.Query{After: &next, Epoch: epoch, Limit: 50, Wait: 5 * time.Second})
				cancel()
				if err != nil {
					g.err = err
					break
				}
				if page.Reset || page.Gap || page.Epoch != epoch {
					g.err = fmt.Errorf("unexpected page at %d: reset %v gap %v epoch %q", next, page.Reset, page.Gap, page.Epoch)
					break
				}
				if len(page.Messages) == 0 && page.Next == next {
					continue
				}
				for _, m := range page.Messages {
					g.seqs = append(g.seqs, m.Seq)
				}
				next = page.Next
			}
			results <- g
		})
	}
	sent := make(chan uint64, total)
	errs := make(chan error, senders)
	var swg sync.WaitGroup
	for s := range senders {
		swg.Go(func() {
			in := ins[s%2]
			for i := range each {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				m, dup, err := in.hub.Append(ctx, shared.Message{Room: "busy", Kind: shared.KindText,
					Author: fmt.Sprint("s", s), Text: fmt.Sprint(i), ClientMsgID: fmt.Sprint(i)})
				cancel()
				if err == nil && dup {
					err = errors.New("a new message answered as a duplicate")
				}
				if err != nil {
					errs <- err
					return
				}
				sent <- m.Seq
			}
		})
	}
	swg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	close(sent)
	seen := make(map[uint64]bool)
	for s := range sent {
		require.False(t, seen[s], "seq %d given twice", s)
		seen[s] = true
	}
	require.Len(t, seen, total)
	wg.Wait()
	close(results)
	for g := range results {
		require.NoError(t, g.err)
		require.Len(t, g.seqs, total)
		for i, s := range g.seqs {
			require.EqualValues(t, i+1, s, "dense, in order, once")
		}
	}
}

// The same client_msg_id sent through two instances at once is one message.
func TestHubSameClientMsgIDThroughTwoInstances(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a := startInstance(t, srv, longSync)
	b := startInstance(t, srv, longSync)
	for i := range 20 {
		id := fmt.Sprint("retry-", i)
		var ma, mb shared.Message
		var da, db bool
		var wg sync.WaitGroup
		wg.Go(func() { ma, da = a.send(t, "r", "ann", "once", id) })
		wg.Go(func() { mb, db = b.send(t, "r", "ann", "once", id) })
		wg.Wait()
		require.Equal(t, ma.Seq, mb.Seq)
		require.True(t, da != db, "exactly one of the two stored it")
	}
	st, err := a.store.LoadRoom(context.Background(), "r")
	require.NoError(t, err)
	require.EqualValues(t, 20, st.Last)
}

// CLIENT KILL TYPE pubsub drops every instance's subscription from
// Redis's side: each subscribes again, and delivery resumes through
// notifications (the periodic check is an hour away). A message sent while
// B had no subscription reaches B by the resync.
func TestHubResumesAfterPubsubKilled(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a := startInstance(t, srv, longSync)
	b := startInstance(t, srv, longSync)
	epoch, last := b.head(t, "r")
	time.Sleep(100 * time.Millisecond)

	held := b.heldRead(t, "r", epoch, last)
	time.Sleep(50 * time.Millisecond)
	require.EqualValues(t, 2, srv.Do("CLIENT", "KILL", "TYPE", "pubsub"))
	m, _ := a.send(t, "r", "ann", "while resubscribing", "")
	p := within(t, held, probeInterval+probeTimeout+2*time.Second)
	require.Equal(t, []shared.Message{m}, p.Messages)

	require.Eventually(t, func() bool { return b.notifier.Ready() == nil }, 5*time.Second, 5*time.Millisecond)
	held = b.heldRead(t, "r", epoch, m.Seq)
	time.Sleep(50 * time.Millisecond)
	m2, _ := a.send(t, "r", "ann", "after", "")
	require.Equal(t, []shared.Message{m2}, within(t, held, 2*time.Second).Messages)
}

// A notification that never comes (here: B's notifier is stopped for good)
// delays a message by at most the hub's SyncInterval for rooms with polls.
func TestHubLostNotificationDelaysAtMostSyncInterval(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a := startInstance(t, srv, longSync)
	s := newStore(t, srv, redisstore.Options{})
	b := queue.New(s, queue.Options{SyncInterval: 300 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(b.Close)
	bi := &instance{store: s, hub: b}
	epoch, last := bi.head(t, "r")
	held := bi.heldRead(t, "r", epoch, last)
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	m, _ := a.send(t, "r", "ann", "unannounced", "")
	require.Equal(t, []shared.Message{m}, within(t, held, 3*time.Second).Messages)
	require.Less(t, time.Since(start), time.Second)
}

// Redis killed and restarted. With AOF (appendfsync always) the epoch is
// kept: a poll held on B across the outage gets the next message with no
// reset. Without persistence the log is new: B's readers get reset.
func TestHubRedisRestart(t *testing.T) {
	for _, aof := range []bool{true, false} {
		t.Run(fmt.Sprint("aof=", aof), func(t *testing.T) {
			srv := redistest.Start(t, redistest.Options{AOF: aof, AppendFsync: "always"})
			a := startInstance(t, srv, 300*time.Millisecond)
			b := startInstance(t, srv, 300*time.Millisecond)
			var last shared.Message
			for i := range 5 {
				last, _ = a.send(t, "r", "ann", fmt.Sprint(i), fmt.Sprint(i))
			}
			epoch, _ := b.head(t, "r")
			require.Equal(t, last.Seq, b.read(t, "r", epoch, 0, 0).Next)
			held := b.heldRead(t, "r", epoch, last.Seq)

			srv.Kill()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, _, err := a.hub.Append(ctx, shared.Message{Room: "r", Kind: shared.KindText, Author: "ann", Text: "lost", ClientMsgID: "x"})
			cancel()
			require.ErrorIs(t, err, queue.ErrStore, "nothing is acknowledged while Redis is down")
			require.Eventually(t, func() bool { return a.notifier.Ready() != nil }, 3*time.Second, 5*time.Millisecond)
			srv.Restart()
			require.Eventually(t, func() bool { return a.notifier.Ready() == nil && b.notifier.Ready() == nil }, 10*time.Second, 10*time.Millisecond)

			m, dup := a.send(t, "r", "ann", "after restart", "y")
			require.False(t, dup)
			p := within(t, held, 5*time.Second)
			if aof {
				require.EqualValues(t, last.Seq+1, m.Seq, "same log, next seq")
				require.False(t, p.Reset)
				require.Equal(t, epoch, p.Epoch)
				require.Equal(t, []shared.Message{m}, p.Messages)
				return
			}
			require.EqualValues(t, 1, m.Seq, "a new log")
			// The held read is answered by the resync's reset (maybe before
			// the new message existed); a reader with the old epoch is reset
			// to the new log and reads the new message.
			require.True(t, p.Reset)
			require.NotEqual(t, epoch, p.Epoch)
			require.Eventually(t, func() bool {
				q := b.read(t, "r", epoch, last.Seq, 0)
				return q.Reset && len(q.Messages) == 1 && q.Messages[0] == m
			}, 5*time.Second, 20*time.Millisecond)
		})
	}
}
