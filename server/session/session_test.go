package session_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/parley-chat/parley/server/internal/testclock"
	"github.com/parley-chat/parley/server/session"
	"github.com/parley-chat/parley/server/session/sessiontest"
	"github.com/parley-chat/parley/shared"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var bg = context.Background()

func members(t *testing.T, m *session.Manager, room string) []shared.Member {
	t.Helper()
	ms, err := m.Members(bg, room)
	require.NoError(t, err)
	return ms
}

func newManager(t *testing.T) (*session.Manager, *testclock.Clock) {
	c := testclock.New(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	return session.NewManager(session.Options{TTL: 2 * time.Minute, Grace: 30 * time.Second, Now: c.Now}), c
}

// events returns the pending presence events, as Run would hand them over.
func events(t *testing.T, m *session.Manager) []session.Event {
	t.Helper()
	var got []session.Event
	m.Flush(context.Background(), func(_ context.Context, e session.Event) error {
		got = append(got, e)
		return nil
	})
	return got
}

func TestRunFlushesEventsAndStops(t *testing.T) {
	m, _ := newManager(t)
	s, err := m.Create(bg, "alice")
	require.NoError(t, err)
	got := make(chan session.Event, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Run(ctx, time.Hour, func(_ context.Context, e session.Event) error {
			got <- e
			return nil
		})
	}()
	pollStarted(t, m, s, "lobby", func() {})
	select {
	case e := <-got:
		require.Equal(t, session.Event{Room: "lobby", Name: "alice", Kind: shared.KindJoin}, e)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not hand over the join")
	}
	cancel()
	<-done
}

func TestNamesAreUniqueCaseInsensitively(t *testing.T) {
	m, _ := newManager(t)
	a, err := m.Create(bg, "Alice")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(a.Token), 43, "a token carries at least 128 random bits")
	_, err = m.Create(bg, "alice")
	require.Equal(t, shared.CodeNameTaken, shared.ErrorCode(err))
	b, err := m.Create(bg, "小明")
	require.NoError(t, err)
	require.NotEqual(t, a.Token, b.Token)

	got, err := m.Lookup(bg, a.Token)
	require.NoError(t, err)
	require.Same(t, a, got)
	_, err = m.Lookup(bg, "nope")
	require.Equal(t, shared.CodeUnknownToken, shared.ErrorCode(err))

	require.NoError(t, m.End(bg, a.Token))
	_, err = m.Create(bg, "alice")
	require.NoError(t, err, "an ended session frees its name")
	require.Equal(t, shared.CodeUnknownToken, shared.ErrorCode(m.End(bg, a.Token)))
}

func TestPresenceJoinGraceLeave(t *testing.T) {
	m, c := newManager(t)
	s, err := m.Create(bg, "alice")
	require.NoError(t, err)

	done := pollStarted(t, m, s, "lobby", func() {})
	require.Equal(t, []session.Event{{Room: "lobby", Name: "alice", Kind: shared.KindJoin}}, events(t, m))
	require.Len(t, members(t, m, "lobby"), 1)
	require.Equal(t, "alice", members(t, m, "lobby")[0].Name)

	// A second poll (the next one of the loop) does not join again.
	done2 := pollStarted(t, m, s, "lobby", func() {})
	done()
	done()  // idempotent
	done2() // both ended: the grace period starts now
	require.Empty(t, events(t, m))

	m.Sweep(c.Add(29 * time.Second))
	require.Empty(t, events(t, m))
	require.Len(t, members(t, m, "lobby"), 1, "still present between polls")
	m.Sweep(c.Add(2 * time.Second))
	require.Equal(t, []session.Event{{Room: "lobby", Name: "alice", Kind: shared.KindLeave}}, events(t, m))
	require.Empty(t, members(t, m, "lobby"))

	// Coming back is a new join.
	pollStarted(t, m, s, "lobby", func() {})()
	require.Equal(t, []session.Event{{Room: "lobby", Name: "alice", Kind: shared.KindJoin}}, events(t, m))
}

func TestHeldPollKeepsSessionAlive(t *testing.T) {
	m, c := newManager(t)
	s, err := m.Create(bg, "alice")
	require.NoError(t, err)
	done := pollStarted(t, m, s, "lobby", func() {})
	require.Len(t, events(t, m), 1) // the join
	for range 10 {
		m.Sweep(c.Add(time.Minute)) // as Run does, with Flush after
		require.Empty(t, events(t, m))
	}
	_, err = m.Lookup(bg, s.Token)
	require.NoError(t, err, "a session with a held poll is active")
	require.Len(t, members(t, m, "lobby"), 1)
	done()
}

func TestSessionExpiryLogsLeaveAndFreesName(t *testing.T) {
	m, c := newManager(t)
	s, err := m.Create(bg, "alice")
	require.NoError(t, err)
	pollStarted(t, m, s, "lobby", func() {})()
	pollStarted(t, m, s, "random", func() {})()
	require.Len(t, events(t, m), 2)

	m.Sweep(c.Add(time.Minute))
	_, err = m.Lookup(bg, s.Token) // activity: the TTL starts again
	require.NoError(t, err)
	m.Sweep(c.Add(2*time.Minute + time.Second))
	_, err = m.Lookup(bg, s.Token)
	require.Equal(t, shared.CodeUnknownToken, shared.ErrorCode(err))
	require.ElementsMatch(t, []session.Event{
		{Room: "lobby", Name: "alice", Kind: shared.KindLeave},
		{Room: "random", Name: "alice", Kind: shared.KindLeave},
	}, events(t, m))
	require.Zero(t, m.Count())
	_, err = m.Create(bg, "alice")
	require.NoError(t, err)
}

func TestEndReleasesHeldPollsAndLeaves(t *testing.T) {
	m, _ := newManager(t)
	s, err := m.Create(bg, "alice")
	require.NoError(t, err)
	released := make(chan struct{})
	done := pollStarted(t, m, s, "lobby", func() { close(released) })
	require.NoError(t, m.End(bg, s.Token))
	<-released
	done()
	require.Equal(t, []session.Event{
		{Room: "lobby", Name: "alice", Kind: shared.KindJoin},
		{Room: "lobby", Name: "alice", Kind: shared.KindLeave},
	}, events(t, m), "a leave never overtakes its join")
	require.Empty(t, members(t, m, "lobby"))
}

func TestTooManyHeldPollsReleaseTheOldest(t *testing.T) {
	c := testclock.New(time.Now())
	m := session.NewManager(session.Options{MaxHeldPerSession: 2, Now: c.Now})
	s, err := m.Create(bg, "alice")
	require.NoError(t, err)
	var released []int
	for i := range 4 {
		pollStarted(t, m, s, "lobby", func() { released = append(released, i) })
	}
	require.Equal(t, []int{0, 1}, released)
}

func TestSendRateLimit(t *testing.T) {
	c := testclock.New(time.Now())
	m := session.NewManager(session.Options{SendRate: 1, SendBurst: 3, Now: c.Now})
	s, err := m.Create(bg, "alice")
	require.NoError(t, err)
	for range 3 {
		ok, _ := m.AllowSend(s)
		require.True(t, ok)
	}
	ok, wait := m.AllowSend(s)
	require.False(t, ok)
	require.InDelta(t, time.Second, wait, float64(10*time.Millisecond))
	c.Add(time.Second)
	ok, _ = m.AllowSend(s)
	require.True(t, ok)
}

func TestMembersOrderedBySince(t *testing.T) {
	m, c := newManager(t)
	for _, name := range []string{"carol", "alice", "bob"} {
		s, err := m.Create(bg, name)
		require.NoError(t, err)
		pollStarted(t, m, s, "lobby", func() {})
		events(t, m) // as Run would, at once
		c.Add(time.Second)
	}
	var names []string
	for _, mem := range members(t, m, "lobby") {
		names = append(names, mem.Name)
	}
	require.Equal(t, []string{"carol", "alice", "bob"}, names)
	require.Empty(t, members(t, m, "elsewhere"))
}

func TestMaxSessions(t *testing.T) {
	m := session.NewManager(session.Options{MaxSessions: 1})
	_, err := m.Create(bg, "a")
	require.NoError(t, err)
	_, err = m.Create(bg, "b")
	require.Equal(t, shared.CodeOverCapacity, shared.ErrorCode(err))
}

// pollStarted holds a poll for s in room and returns its Done.
func pollStarted(t testing.TB, m *session.Manager, s *session.Session, room string, release func()) func() {
	t.Helper()
	h, err := m.Hold(s, room, "", session.ReleaseFunc(release))
	require.NoError(t, err)
	return func() { m.Done(h) }
}

func TestHeldPollsAreCappedForEveryone(t *testing.T) {
	m := session.NewManager(session.Options{MaxHeld: 2})
	s, err := m.Create(bg, "alice")
	require.NoError(t, err)
	a, err := m.Hold(nil, "lobby", "", session.ReleaseFunc(func() {}))
	require.NoError(t, err)
	_, err = m.Hold(s, "lobby", "", session.ReleaseFunc(func() {}))
	require.NoError(t, err)
	_, err = m.Hold(nil, "lobby", "", session.ReleaseFunc(func() {}))
	require.Equal(t, shared.CodeOverCapacity, shared.ErrorCode(err))
	require.Equal(t, 2, m.Held())
	m.Done(a)
	m.Done(a) // a second Done changes nothing
	require.Equal(t, 1, m.Held())
	_, err = m.Hold(nil, "lobby", "", session.ReleaseFunc(func() {}))
	require.NoError(t, err)
}

func TestMemStoreConformance(t *testing.T) {
	sessiontest.Run(t, func(t *testing.T) (session.Store, func() string) {
		s := session.NewMemStore()
		return s, func() string { return fmt.Sprintf("%+v", s) }
	})
}

func TestMemCursorsConformance(t *testing.T) {
	sessiontest.RunCursors(t, func(t *testing.T) session.CursorStore { return session.NewMemCursors(100) })
}

// Anonymous polls cost nothing to make, so they may not take the capacity
// kept for people who joined; and one address may hold only so many.
func TestAnonymousPollsCannotLockOutSessions(t *testing.T) {
	m := session.NewManager(session.Options{MaxHeld: 4, MaxHeldPerAddr: 3})
	s, err := m.Create(bg, "alice")
	require.NoError(t, err)
	hold := func(s *session.Session, addr string) error {
		_, err := m.Hold(s, "lobby", addr, session.ReleaseFunc(func() {}))
		return err
	}
	require.NoError(t, hold(nil, "10.0.0.1"))
	require.NoError(t, hold(nil, "10.0.0.1"))
	require.NoError(t, hold(nil, "10.0.0.2"))
	require.Equal(t, shared.CodeOverCapacity, shared.ErrorCode(hold(nil, "10.0.0.3")), "the last quarter is kept for sessions")
	require.NoError(t, hold(s, "10.0.0.1"), "a session still gets a slot")
	require.Equal(t, shared.CodeOverCapacity, shared.ErrorCode(hold(s, "10.0.0.4")), "the global cap still holds")

	m2 := session.NewManager(session.Options{MaxHeld: 100, MaxHeldPerAddr: 2})
	for range 2 {
		_, err := m2.Hold(nil, "lobby", "2001:db8::/64", session.ReleaseFunc(func() {}))
		require.NoError(t, err)
	}
	_, err = m2.Hold(nil, "lobby", "2001:db8::/64", session.ReleaseFunc(func() {}))
	require.Equal(t, shared.CodeRateLimited, shared.ErrorCode(err))
	h, err := m2.Hold(nil, "lobby", "10.0.0.9", session.ReleaseFunc(func() {}))
	require.NoError(t, err, "another address is not affected")
	m2.Done(h)
	require.Equal(t, 2, m2.Held())
}

func TestJoinsAreLimitedAndRoomsCapped(t *testing.T) {
	c := testclock.New(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	m := session.NewManager(session.Options{Grace: 30 * time.Second, Now: c.Now, MaxRoomsPerSession: 4, JoinRate: 1, JoinBurst: 3})
	s, err := m.Create(bg, "alice")
	require.NoError(t, err)
	for i := range 3 {
		require.NoError(t, m.Seen(s, fmt.Sprint("r", i)))
	}
	err = m.Seen(s, "r3")
	require.Equal(t, shared.CodeRateLimited, shared.ErrorCode(err))
	var re session.RetryError
	require.ErrorAs(t, err, &re)
	require.Equal(t, time.Second, re.RetryAfter())
	// Rooms it is in are not joins.
	for i := range 3 {
		require.NoError(t, m.Seen(s, fmt.Sprint("r", i)))
	}
	c.Add(time.Second)
	require.NoError(t, m.Seen(s, "r3"))
	c.Add(time.Second)
	_, err = m.Hold(s, "r4", "", session.ReleaseFunc(func() {}))
	require.Equal(t, shared.CodeTooManyRooms, shared.ErrorCode(err))
	require.ErrorAs(t, err, &re)
	require.Equal(t, 28*time.Second, re.RetryAfter(), "when the first presence without a held poll ends (r0-r2, last seen 2 s ago)")
	require.Len(t, events(t, m), 4)
	c.Add(30 * time.Second)
	m.Sweep(c.Now())
	_, err = m.Hold(s, "r4", "", session.ReleaseFunc(func() {}))
	require.NoError(t, err)
}
