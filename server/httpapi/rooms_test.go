package httpapi_test

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/parley-chat/parley/server/memstore"
	"github.com/parley-chat/parley/shared"
)

// TestReadsOfMadeUpRoomsCreateNothing: with -max-rooms 8, seven anonymous
// GETs of made-up rooms used to lock every new room out until a restart
// (issue 8). Now reads of rooms without messages leave nothing in memory or
// in the store, held reads of them take at most a quarter of the rooms,
// and a real user can still create a room.
func TestReadsOfMadeUpRoomsCreateNothing(t *testing.T) {
	store := memstore.New(0)
	h := newHarness(t, func(s *settings) { s.store = store; s.queue.MaxRooms = 8 })
	for i := range 100 {
		room := fmt.Sprintf("made-up-%d", i)
		h.poll("", room, "")
		h.poll("", room, "after=0&wait=0")
	}
	require.Zero(t, h.hub.Rooms())
	require.Zero(t, store.Rooms())

	// Two held polls of made-up rooms take the quarter; a third is refused.
	held := make(chan int, 2)
	for i := range 2 {
		go func() {
			r := h.do("GET", fmt.Sprintf("/api/rooms/held-%d/messages?after=0&wait=2", i), "", "", "")
			held <- r.status
		}()
	}
	require.Eventually(t, func() bool { return h.api.HeldPolls() == 2 }, 10*time.Second, 5*time.Millisecond)
	r := h.do("GET", "/api/rooms/held-3/messages?after=0&wait=2", "", "", "")
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	require.Equal(t, shared.CodeOverCapacity, r.errCode(t))

	alice := h.join("alice")
	require.EqualValues(t, 1, h.send(alice, "real", "hello", "").Seq)
	require.Equal(t, 1, store.Rooms(), "only the room with a message is stored")
	for range 2 {
		require.Equal(t, http.StatusOK, <-held)
	}
}

func TestRoomCreationIsRateLimitedPerAddress(t *testing.T) {
	h := newHarness(t, func(s *settings) { s.api.RoomRate, s.api.RoomBurst = rate.Every(time.Hour), 2 })
	alice := h.join("alice")
	h.send(alice, "a", "first", "")
	h.send(alice, "b", "first", "")
	r := h.do("POST", "/api/rooms/c/messages", alice, jsonType, `{"text":"first"}`)
	require.Equal(t, http.StatusTooManyRequests, r.status)
	require.Equal(t, shared.CodeRateLimited, r.errCode(t))
	ra, err := strconv.Atoi(r.header.Get("Retry-After"))
	require.NoError(t, err)
	require.Greater(t, ra, 60)

	// Rooms that exist take messages as before; reads create nothing and
	// are not limited.
	h.send(alice, "a", "second", "")
	h.poll("", "d", "")
	// A session's poll of a room without messages would log its join, the
	// room's first message: that is a creation too.
	r = h.do("GET", "/api/rooms/d/messages?after=0&wait=0", alice, "", "")
	require.Equal(t, http.StatusTooManyRequests, r.status)
	require.Equal(t, shared.CodeRateLimited, r.errCode(t))
	// Its poll of a room that exists is a join, not a creation.
	r = h.do("GET", "/api/rooms/b/messages?after=0&wait=0", alice, "", "")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
}

// TestJoinsAreCappedAndRateLimited: one session polling 40 rooms logged 40
// joins in 1.2 s (issue 8). Now joins beyond a burst of 10 wait for the
// join rate, and a session is present in at most 16 rooms at once; going
// back to rooms it is present in is never refused.
func TestJoinsAreCappedAndRateLimited(t *testing.T) {
	h := newHarness(t, func(s *settings) { s.api.RoomRate = rate.Inf })
	alice := h.join("alice")
	bob := h.join("bob")
	for i := range 40 {
		h.send(bob, fmt.Sprint("r", i), "hi", "")
	}
	pollRoom := func(i int) reply {
		return h.do("GET", fmt.Sprintf("/api/rooms/r%d/messages?after=0&wait=0", i), alice, "", "")
	}
	ok, refused := 0, map[string]int{}
	for i := range 40 {
		r := pollRoom(i)
		if r.status == http.StatusOK {
			ok++
			continue
		}
		require.Equal(t, http.StatusTooManyRequests, r.status)
		require.NotEmpty(t, r.header.Get("Retry-After"))
		refused[r.errCode(t)]++
	}
	require.Equal(t, 10, ok, "the join burst")
	require.Equal(t, 30, refused[shared.CodeRateLimited])

	// Switching between the rooms it is in: never refused.
	for range 3 {
		for i := range 10 {
			require.Equal(t, http.StatusOK, pollRoom(i).status)
		}
	}

	// With time for more joins, the cap on rooms at once is next.
	h.clock.Add(time.Minute)
	ok, refused = 0, map[string]int{}
	for i := 10; i < 40; i++ {
		r := pollRoom(i)
		if r.status == http.StatusOK {
			ok++
			continue
		}
		require.Equal(t, http.StatusTooManyRequests, r.status)
		refused[r.errCode(t)]++
	}
	require.Equal(t, 6, ok, "up to 16 rooms at once")
	require.Equal(t, 24, refused[shared.CodeTooManyRooms])

	// Its presence ends after the grace period: then it may join others.
	h.clock.Add(time.Minute)
	h.sessions.Sweep(h.clock.Now())
	require.Equal(t, http.StatusOK, pollRoom(30).status)

	h.flushPresence()
	joins := 0
	for i := range 40 {
		for _, m := range h.poll("", fmt.Sprint("r", i), "after=0&wait=0").Messages {
			if m.Kind == shared.KindJoin && m.Author == "alice" {
				joins++
			}
		}
	}
	require.Equal(t, 17, joins, "16 rooms, then one more once the others were left")
}

// TestManyFirstJoinersPayForTheRoomOnce: 30 people from one address (an
// office behind NAT) arriving at once in a room that has no message yet
// must not each be charged a room creation: their joins are all pending
// before the first is logged.
func TestManyFirstJoinersPayForTheRoomOnce(t *testing.T) {
	h := newHarness(t, func(s *settings) { s.api.RoomRate, s.api.RoomBurst = rate.Every(time.Hour), 1 })
	statuses := make(chan int, 30)
	for i := range 30 {
		tok := h.join(fmt.Sprint("p", i))
		go func() {
			statuses <- h.do("GET", "/api/rooms/standup/messages?after=0&wait=1", tok, "", "").status
		}()
	}
	for range 30 {
		require.Equal(t, http.StatusOK, <-statuses)
	}
	h.flushPresence()
	require.Len(t, h.poll("", "standup", "after=0&wait=0&limit=100").Messages, 30, "30 joins")
	// The address's one creation is spent.
	alice := h.join("alice")
	r := h.do("POST", "/api/rooms/another/messages", alice, jsonType, `{"text":"first"}`)
	require.Equal(t, http.StatusTooManyRequests, r.status)
}
