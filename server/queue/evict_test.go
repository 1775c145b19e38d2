package queue_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parley-chat/parley/server/memstore"
	"github.com/parley-chat/parley/server/queue"
	"github.com/parley-chat/parley/shared"
)

func TestReadsOfMadeUpRoomsLeaveNothing(t *testing.T) {
	store := memstore.New(0)
	h := newHub(t, store, queue.Options{MaxRooms: 8})
	ctx := context.Background()
	for i := range 100 {
		room := fmt.Sprintf("made-up-%d", i)
		_, err := h.Read(ctx, room, queue.Query{})
		require.NoError(t, err)
		p, err := h.Read(ctx, room, queue.Query{After: after(0)})
		require.NoError(t, err)
		require.Empty(t, p.Messages)
		_, err = h.Read(ctx, room, queue.Query{Before: after(5)})
		require.NoError(t, err)
	}
	require.Zero(t, h.Rooms(), "reads of rooms without messages stayed in memory")
	require.Zero(t, store.Rooms(), "reads of rooms without messages created them in the store")
	send(t, h, "real", "hello")
	require.Equal(t, 1, h.Rooms())
	require.Equal(t, 1, store.Rooms())
}

func TestEmptyCursorStaysValidAfterFirstMessage(t *testing.T) {
	h := newHub(t, memstore.New(0), queue.Options{})
	ctx := context.Background()
	p, err := h.Read(ctx, "new", queue.Query{After: after(0)})
	require.NoError(t, err)
	send(t, h, "new", "first")
	p2, err := h.Read(ctx, "new", queue.Query{After: after(p.Next), Epoch: p.Epoch})
	require.NoError(t, err)
	require.False(t, p2.Reset, "the first message voided a cursor of the empty room")
	require.Equal(t, []uint64{1}, seqs(p2.Messages))
}

func TestHeldReadsOfEmptyRoomsTakeAQuarterOfMaxRooms(t *testing.T) {
	h := newHub(t, memstore.New(0), queue.Options{MaxRooms: 8, IdleTimeout: 40 * time.Millisecond})
	ctx := context.Background()
	var ws []*queue.Waiter
	for i := range 2 {
		_, w, err := h.Watch(ctx, fmt.Sprint("e", i), queue.Query{After: after(0), Wait: time.Minute}, newRecorder())
		require.NoError(t, err)
		require.NotNil(t, w)
		ws = append(ws, w)
	}
	_, _, err := h.Watch(ctx, "e2", queue.Query{After: after(0), Wait: time.Minute}, newRecorder())
	require.ErrorIs(t, err, queue.ErrTooManyRooms)
	// A read answered at once holds nothing, and is answered.
	p, err := h.Read(ctx, "e2", queue.Query{After: after(0)})
	require.NoError(t, err)
	require.Empty(t, p.Messages)
	// Writers are never refused for it: a message creates its room.
	send(t, h, "e2", "first")
	send(t, h, "e0", "first")
	require.Equal(t, 3, h.Rooms())
	for _, w := range ws {
		w.Cancel()
	}
	// e1 has no message and nobody waits: it goes at the next sweep; the
	// others once idle.
	require.Eventually(t, func() bool { return h.Rooms() == 0 }, 5*time.Second, 5*time.Millisecond)
}

func TestIdleRoomLeavesAndComesBackWithItsMessages(t *testing.T) {
	h := newHub(t, memstore.New(0), queue.Options{History: 3, IdleTimeout: 40 * time.Millisecond})
	ctx := context.Background()
	for i := range 5 {
		send(t, h, "r", fmt.Sprint("m", i))
	}
	before, err := h.Read(ctx, "r", queue.Query{After: after(0)})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return h.Rooms() == 0 }, 5*time.Second, 5*time.Millisecond)
	require.NotZero(t, h.Evictions())
	again, err := h.Read(ctx, "r", queue.Query{After: after(0), Epoch: before.Epoch})
	require.NoError(t, err)
	require.False(t, again.Reset)
	require.Equal(t, before.Epoch, again.Epoch)
	require.Equal(t, before.Messages, again.Messages)
	require.EqualValues(t, 6, send(t, h, "r", "next").Seq)
}

func TestHeldReadKeepsItsRoom(t *testing.T) {
	h := newHub(t, memstore.New(0), queue.Options{IdleTimeout: 20 * time.Millisecond})
	send(t, h, "r", "a")
	rec := newRecorder()
	_, w, err := h.Watch(context.Background(), "r", queue.Query{After: after(1), Wait: time.Minute}, rec)
	require.NoError(t, err)
	require.NotNil(t, w)
	time.Sleep(150 * time.Millisecond) // several idle timeouts
	require.Equal(t, 1, h.Rooms())
	send(t, h, "r", "b")
	require.Equal(t, []uint64{2}, seqs(rec.wait(t).Messages))
}

// TestEvictionRacesReadersAndWriters evicts rooms all the time (a sweep
// every millisecond, rooms idle after four) while writers append and
// readers follow every room with held reads: each reader must see each
// room's messages once, in order, and the same as the store has.
func TestEvictionRacesReadersAndWriters(t *testing.T) {
	h := newHub(t, memstore.New(0), queue.Options{History: 4, MaxRooms: 3, IdleTimeout: 4 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const rooms, perRoom = 4, 60
	var wg sync.WaitGroup
	for r := range rooms {
		room := fmt.Sprint("r", r)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perRoom {
				for {
					_, _, err := h.Append(ctx, shared.Message{Room: room, Kind: shared.KindText, Author: "w", Text: fmt.Sprint(i)})
					if err == nil {
						break
					}
					// Every place taken by held reads: retry, as a client would.
					require.ErrorIs(t, err, queue.ErrTooManyRooms)
					time.Sleep(time.Millisecond)
				}
				if i%7 == 0 {
					time.Sleep(6 * time.Millisecond) // long enough to be evicted
				}
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			var got []string
			var epoch string
			cur := uint64(0)
			for len(got) < perRoom {
				p, err := h.Read(ctx, room, queue.Query{After: after(cur), Epoch: epoch, Limit: 7, Wait: 3 * time.Millisecond})
				if err != nil {
					require.ErrorIs(t, err, queue.ErrTooManyRooms)
					time.Sleep(time.Millisecond)
					continue
				}
				require.False(t, p.Reset || p.Gap, "cursor %d voided in %s", cur, room)
				epoch = p.Epoch
				for _, m := range p.Messages {
					require.Equal(t, cur+1, m.Seq, "room %s", room)
					cur = m.Seq
					got = append(got, m.Text)
				}
			}
			want := make([]string, perRoom)
			for i := range want {
				want[i] = fmt.Sprint(i)
			}
			require.Equal(t, want, got)
		}()
	}
	wg.Wait()
	require.NotZero(t, h.Evictions(), "nothing was evicted: the test proved nothing")
}

func TestWindowsStayWithinTheirBudget(t *testing.T) {
	const budget = 64 << 10
	h := newHub(t, memstore.New(0), queue.Options{History: 1000, WindowBytes: budget})
	ctx := context.Background()
	text := strings.Repeat("x", 500)
	const rooms, perRoom = 40, 30 // about 40 * 30 * 800 B = 960 KB of windows without a budget
	for i := range perRoom {
		for r := range rooms {
			send(t, h, fmt.Sprint("r", r), fmt.Sprint(i, text))
		}
	}
	require.Eventually(t, func() bool { return h.WindowBytes() <= budget }, 5*time.Second, 5*time.Millisecond)
	// Readers from the start of every room still get every message, the
	// trimmed part from the store.
	for r := range rooms {
		p, err := h.Read(ctx, fmt.Sprint("r", r), queue.Query{After: after(0), Limit: 100})
		require.NoError(t, err)
		require.False(t, p.Gap)
		require.Equal(t, span(1, perRoom), seqs(p.Messages))
	}
}

// TestAdmitChargesOneOfManyFirstWriters: the people arriving at once in a
// new room must not each pay for creating it (the first joins of a room
// all come before the first is logged).
func TestAdmitChargesOneOfManyFirstWriters(t *testing.T) {
	h := newHub(t, memstore.New(0), queue.Options{})
	ctx := context.Background()
	var mu sync.Mutex
	asked := 0
	refuseFirst := func(context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		asked++
		time.Sleep(5 * time.Millisecond) // a limiter's round trip
		if asked == 1 {
			return errors.New("refused")
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() { errs <- h.Admit(ctx, "new", refuseFirst) })
	}
	wg.Wait()
	close(errs)
	refused := 0
	for err := range errs {
		if err != nil {
			refused++
		}
	}
	require.Equal(t, 1, refused)
	require.Equal(t, 2, asked, "the refused caller's decision, then one more for all the others")
	// Paid for, the room waits in memory for its first message.
	require.Equal(t, 1, h.Rooms())
	require.NoError(t, h.Admit(ctx, "new", func(context.Context) error { return errors.New("asked again") }))
	send(t, h, "new", "first")
	require.NoError(t, h.Admit(ctx, "new", func(context.Context) error { return errors.New("asked again") }))
}
