// Package sessiontest is the conformance suite every session.Store must
// pass (memory, bolt, Redis), run by each store's own tests with a factory.
// Besides the Store's contract it runs two session.Managers on one store,
// as two instances on one Redis.
package sessiontest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parley-chat/parley/server/session"
	"github.com/parley-chat/parley/shared"
)

// Factory returns a new, empty store, and a function that returns all the
// store holds as text (keys and values), to check that no token is in it.
type Factory func(t *testing.T) (s session.Store, dump func() string)

var t0 = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

const ttl = 2 * time.Minute

// Run runs the suite.
func Run(t *testing.T, newStore Factory) {
	ctx := context.Background()

	t.Run("SessionLifecycle", func(t *testing.T) {
		s, _ := newStore(t)
		a := session.Record{Hash: session.TokenHash("token-a"), Name: "Alice"}
		taken, err := s.CreateSession(ctx, a, t0, ttl)
		require.NoError(t, err)
		require.False(t, taken)
		taken, err = s.CreateSession(ctx, session.Record{Hash: session.TokenHash("token-b"), Name: "alice"}, t0, ttl)
		require.NoError(t, err)
		require.True(t, taken, "names are unique without regard to case")
		for _, look := range []string{"Alice", "alice", "\u0430lice"} { // the last with a Cyrillic а
			inUse, err := s.NameTaken(ctx, look, t0)
			require.NoError(t, err)
			require.True(t, inUse, "%q looks like a live session's name", look)
		}
		inUse, err := s.NameTaken(ctx, "bob", t0)
		require.NoError(t, err)
		require.False(t, inUse)

		name, ok, err := s.TouchSession(ctx, a.Hash, t0.Add(time.Minute), ttl)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, "Alice", name)
		_, ok, err = s.TouchSession(ctx, session.TokenHash("nope"), t0, ttl)
		require.NoError(t, err)
		require.False(t, ok)

		name, ok, err = s.EndSession(ctx, a.Hash)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, "Alice", name)
		_, ok, err = s.EndSession(ctx, a.Hash)
		require.NoError(t, err)
		require.False(t, ok)
		_, ok, err = s.TouchSession(ctx, a.Hash, t0.Add(time.Minute), ttl)
		require.NoError(t, err)
		require.False(t, ok)
		inUse, err = s.NameTaken(ctx, "Alice", t0.Add(time.Minute))
		require.NoError(t, err)
		require.False(t, inUse, "an ended session's name is free")
		taken, err = s.CreateSession(ctx, session.Record{Hash: session.TokenHash("token-c"), Name: "ALICE"}, t0, ttl)
		require.NoError(t, err)
		require.False(t, taken, "an ended session frees its name")
	})

	t.Run("OneOfConcurrentCreationsWins", func(t *testing.T) {
		s, _ := newStore(t)
		var won atomic.Int32
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				taken, err := s.CreateSession(ctx, session.Record{Hash: session.TokenHash(fmt.Sprint("t", i)), Name: "bob"}, t0, ttl)
				if err == nil && !taken {
					won.Add(1)
				}
			})
		}
		wg.Wait()
		require.EqualValues(t, 1, won.Load())
	})

	t.Run("PresenceJoinsOnceAndExpiresOnce", func(t *testing.T) {
		s, _ := newStore(t)
		lease := session.Lease{Room: "lobby", Name: "ann", Since: t0, Until: t0.Add(30 * time.Second)}
		var joins atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				joined, err := s.Present(ctx, []session.Lease{lease})
				if err == nil && joined[0] {
					joins.Add(1)
				}
			})
		}
		wg.Wait()
		require.EqualValues(t, 1, joins.Load(), "one join however many instances")

		// A later lease extends it; an earlier one does not shorten it.
		later := lease
		later.Since, later.Until = t0.Add(time.Minute), t0.Add(2*time.Minute)
		joined, err := s.Present(ctx, []session.Lease{later, {Room: "other", Name: "ann", Since: t0, Until: t0.Add(time.Second)}, lease})
		require.NoError(t, err)
		require.Equal(t, []bool{false, true, false}, joined)
		ms, err := s.Members(ctx, "lobby")
		require.NoError(t, err)
		require.Len(t, ms, 1)
		require.True(t, t0.Equal(ms[0].Since), "since is when the presence started, %v", ms[0].Since)

		gone, err := s.Expire(ctx, t0.Add(time.Minute))
		require.NoError(t, err)
		require.Equal(t, []session.Presence{{Room: "other", Name: "ann"}}, gone)

		var leaves atomic.Int32
		for range 8 {
			wg.Go(func() {
				ps, err := s.Expire(ctx, t0.Add(3*time.Minute))
				if err == nil {
					leaves.Add(int32(len(ps)))
				}
			})
		}
		wg.Wait()
		require.EqualValues(t, 1, leaves.Load(), "one leave however many instances")
		ms, err = s.Members(ctx, "lobby")
		require.NoError(t, err)
		require.Empty(t, ms)
	})

	t.Run("PresenceNeedsALiveSession", func(t *testing.T) {
		s, _ := newStore(t)
		rec := session.Record{Hash: session.TokenHash("tok"), Name: "gus"}
		_, err := s.CreateSession(ctx, rec, t0, ttl)
		require.NoError(t, err)
		lease := session.Lease{Room: "lobby", Name: "gus", Hash: rec.Hash, Since: t0, Until: t0.Add(time.Hour)}
		joined, err := s.Present(ctx, []session.Lease{lease})
		require.NoError(t, err)
		require.Equal(t, []bool{true}, joined)
		_, _, err = s.EndSession(ctx, rec.Hash)
		require.NoError(t, err)
		rooms, err := s.LeaveAll(ctx, "gus")
		require.NoError(t, err)
		require.Equal(t, []string{"lobby"}, rooms)
		// An instance that still holds the session's state renews its lease.
		joined, err = s.Present(ctx, []session.Lease{lease})
		require.NoError(t, err)
		require.Equal(t, []bool{false}, joined)
		ms, err := s.Members(ctx, "lobby")
		require.NoError(t, err)
		require.Empty(t, ms, "an ended session is not brought back")
	})

	t.Run("LeaveAllAndMembers", func(t *testing.T) {
		s, _ := newStore(t)
		until := t0.Add(time.Hour)
		_, err := s.Present(ctx, []session.Lease{
			{Room: "lobby", Name: "carol", Since: t0, Until: until},
			{Room: "lobby", Name: "ann", Since: t0.Add(time.Second), Until: until},
			{Room: "lobby", Name: "bob", Since: t0.Add(time.Second), Until: until},
			{Room: "random", Name: "ann", Since: t0, Until: until},
		})
		require.NoError(t, err)
		ms, err := s.Members(ctx, "lobby")
		require.NoError(t, err)
		var names []string
		for _, m := range ms {
			names = append(names, m.Name)
		}
		require.Equal(t, []string{"carol", "ann", "bob"}, names, "longest present first, then by name")

		rooms, err := s.LeaveAll(ctx, "ann")
		require.NoError(t, err)
		require.ElementsMatch(t, []string{"lobby", "random"}, rooms)
		rooms, err = s.LeaveAll(ctx, "ann")
		require.NoError(t, err)
		require.Empty(t, rooms)
		ms, err = s.Members(ctx, "random")
		require.NoError(t, err)
		require.Empty(t, ms)
	})

	t.Run("TwoInstancesShareSessionsAndPresence", func(t *testing.T) {
		s, dump := newStore(t)
		clock := &clock{now: t0}
		opt := session.Options{TTL: ttl, Grace: 30 * time.Second, Now: clock.Now, Store: s}
		a, b := session.NewManager(opt), session.NewManager(opt)
		var log eventLog

		sa, err := a.Create(ctx, "Dana")
		require.NoError(t, err)
		_, err = b.Create(ctx, "dana")
		require.Equal(t, shared.CodeNameTaken, shared.ErrorCode(err), "a name taken on A is taken on B")
		sb, err := b.Lookup(ctx, sa.Token)
		require.NoError(t, err, "a token issued by A works on B")
		require.Equal(t, "Dana", sb.Name)
		stored := dump()
		require.Contains(t, stored, session.TokenHash(sa.Token), "the dump shows what is stored")
		require.NotContains(t, stored, sa.Token, "only a hash of the token is stored")

		// Polls alternate between the instances: one join.
		for i := range 6 {
			m, sess := a, sa
			if i%2 == 1 {
				m, sess = b, sb
			}
			h, err := m.Hold(sess, "lobby", session.ReleaseFunc(func() {}))
			require.NoError(t, err)
			log.flush(a, b)
			clock.add(10 * time.Second)
			m.Done(h)
			a.Sweep(clock.Now())
			b.Sweep(clock.Now())
			log.flush(a, b)
		}
		for _, m := range []*session.Manager{a, b} {
			ms, err := m.Members(ctx, "lobby")
			require.NoError(t, err)
			require.Len(t, ms, 1, "members agree")
			require.Equal(t, "Dana", ms[0].Name)
		}
		// The client stops: both instances sweep; one leave.
		for range 4 {
			clock.add(10 * time.Second)
			a.Sweep(clock.Now())
			b.Sweep(clock.Now())
			log.flush(a, b)
		}
		require.Equal(t, []string{"join lobby Dana", "leave lobby Dana"}, log.lines())

		// Ending the session on B frees the name on A and logs one leave.
		h, err := a.Hold(sa, "random", session.ReleaseFunc(func() {}))
		require.NoError(t, err)
		log.flush(a, b)
		require.NoError(t, b.End(ctx, sa.Token))
		log.flush(a, b)
		a.Done(h)
		// A still holds the session's state and renews its presence for
		// the grace period: the ended session must not join again.
		for range 2 {
			clock.add(10 * time.Second)
			a.Sweep(clock.Now())
			b.Sweep(clock.Now())
			log.flush(a, b)
		}
		_, err = a.Lookup(ctx, sa.Token)
		require.Equal(t, shared.CodeUnknownToken, shared.ErrorCode(err))
		_, err = a.Create(ctx, "dana")
		require.NoError(t, err)
		for range 5 {
			clock.add(10 * time.Second)
			a.Sweep(clock.Now())
			b.Sweep(clock.Now())
			log.flush(a, b)
		}
		require.Equal(t, []string{"join lobby Dana", "leave lobby Dana", "join random Dana", "leave random Dana"}, log.lines())
	})
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// eventLog is the room log's view of presence: what every instance emits.
type eventLog struct {
	mu sync.Mutex
	ev []string
}

func (l *eventLog) flush(ms ...*session.Manager) {
	for _, m := range ms {
		m.Flush(context.Background(), func(_ context.Context, e session.Event) error {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.ev = append(l.ev, strings.Join([]string{string(e.Kind), e.Room, e.Name}, " "))
			return nil
		})
	}
}

func (l *eventLog) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.ev...)
}

// RunCursors runs the suite every session.CursorStore passes.
func RunCursors(t *testing.T, newStore func(t *testing.T) session.CursorStore) {
	ctx := context.Background()
	t.Run("CompareAndSet", func(t *testing.T) {
		s := newStore(t)
		_, ok, err := s.Cursor(ctx, "xiaoming")
		require.NoError(t, err)
		require.False(t, ok)
		first := session.Cursor{Epoch: "e1", Seq: 3}
		set, err := s.AdvanceCursor(ctx, "xiaoming", nil, first)
		require.NoError(t, err)
		require.True(t, set)
		set, err = s.AdvanceCursor(ctx, "xiaoming", nil, session.Cursor{Epoch: "e1", Seq: 9})
		require.NoError(t, err)
		require.False(t, set, "registered already")
		got, ok, err := s.Cursor(ctx, "xiaoming")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, first, got)

		next := session.Cursor{Epoch: "e1", Seq: 4}
		var moved atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if ok, err := s.AdvanceCursor(ctx, "xiaoming", &first, next); err == nil && ok {
					moved.Add(1)
				}
			})
		}
		wg.Wait()
		require.EqualValues(t, 1, moved.Load(), "one of concurrent advances from one cursor wins")
		got, _, err = s.Cursor(ctx, "xiaoming")
		require.NoError(t, err)
		require.Equal(t, next, got)
		set, err = s.AdvanceCursor(ctx, "lisi", &first, next)
		require.NoError(t, err)
		require.False(t, set, "no cursor to advance")
	})
}
