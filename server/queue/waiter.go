package queue

import (
	"sync"
	"sync/atomic"
	"time"
)

// Receiver is told the answer to a held read, exactly once. Deliver runs on
// one of the hub's goroutines (a fan-out worker, the timer, or Drain) and
// must not block: hand the page on, or write it with a short deadline.
type Receiver interface {
	Deliver(*Page)
}

// Waiter is one held read. It is answered exactly once: by a publish, when
// its wait ends, by Release, or never if Cancel wins.
type Waiter struct {
	room  *room
	wheel *wheel
	rcv   Receiver
	after uint64
	limit int
	fired atomic.Bool
	idx   int    // in room.waiters; guarded by room.mu
	gen   uint64 // room.gen when listed; guarded by room.mu

	// guarded by wheel.mu
	tick  int64
	slot  int
	timed bool
}

// Cancel withdraws the read; it returns false when the answer is already
// being delivered, in which case Deliver runs (or ran) as usual.
func (w *Waiter) Cancel() bool {
	if !w.fired.CompareAndSwap(false, true) {
		return false
	}
	w.room.unlist(w)
	w.wheel.remove(w)
	return true
}

// Release answers the read now with what it has (nothing new), as if its
// wait had ended; a session uses it to let go of a replaced poll.
func (w *Waiter) Release() { w.expire() }

// fire delivers p if nothing else answered first. The room has already
// unlisted w.
func (w *Waiter) fire(p *Page) {
	if !w.fired.CompareAndSwap(false, true) {
		return
	}
	w.wheel.remove(w)
	w.rcv.Deliver(p)
}

// expire delivers the room's empty page at w's cursor.
func (w *Waiter) expire() {
	if !w.fired.CompareAndSwap(false, true) {
		return
	}
	w.room.unlist(w)
	w.wheel.remove(w)
	w.rcv.Deliver(w.room.emptyAt(w.after))
}

// wheel times out held reads without a timer each: deadlines are rounded up
// to the next tick of one shared ticker, and slots are plain slices with
// O(1) removal, so neither holding nor answering a read allocates a timer.
type wheel struct {
	res time.Duration

	mu    sync.Mutex
	done  int64 // every tick up to done has been expired
	slots map[int64][]*Waiter
	n     int
}

func newWheel(res time.Duration, now time.Time) *wheel {
	return &wheel{res: res, done: now.UnixNano() / int64(res), slots: make(map[int64][]*Waiter)}
}

// add times w out at deadline, unless it was answered already.
func (wh *wheel) add(w *Waiter, deadline time.Time) {
	tick := (deadline.UnixNano() + int64(wh.res) - 1) / int64(wh.res)
	wh.mu.Lock()
	defer wh.mu.Unlock()
	if w.fired.Load() {
		return // answered between listing and timing: nothing to time
	}
	tick = max(tick, wh.done+1)
	s := wh.slots[tick]
	w.tick, w.slot, w.timed = tick, len(s), true
	wh.slots[tick] = append(s, w)
	wh.n++
}

// remove takes w off the wheel and reports whether it was on it.
func (wh *wheel) remove(w *Waiter) bool {
	wh.mu.Lock()
	defer wh.mu.Unlock()
	if !w.timed {
		return false
	}
	s := wh.slots[w.tick]
	last := len(s) - 1
	if w.slot != last {
		s[w.slot] = s[last]
		s[w.slot].slot = w.slot
	}
	s[last] = nil
	if last == 0 {
		delete(wh.slots, w.tick)
	} else {
		wh.slots[w.tick] = s[:last]
	}
	w.timed = false
	wh.n--
	return true
}

// due takes every waiter whose tick is at or before now.
func (wh *wheel) due(now time.Time) []*Waiter {
	upto := now.UnixNano() / int64(wh.res)
	wh.mu.Lock()
	defer wh.mu.Unlock()
	var out []*Waiter
	for t := wh.done + 1; t <= upto; t++ {
		for _, w := range wh.slots[t] {
			w.timed = false
			out = append(out, w)
		}
		wh.n -= len(wh.slots[t])
		delete(wh.slots, t)
	}
	wh.done = max(wh.done, upto)
	return out
}

// run expires due waiters every tick until stop is closed.
func (wh *wheel) run(stop <-chan struct{}) {
	t := time.NewTicker(wh.res)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			for _, w := range wh.due(time.Now()) {
				w.expire()
			}
		}
	}
}
