package queue

import (
	"unsafe"

	"github.com/parley-chat/parley/shared"
)

// window holds the newest messages of one room, densely: msgs[i].Seq ==
// first+i. It is a plain data structure with no locking of its own; the room
// that owns it guards it.
type window struct {
	max  int
	msgs []shared.Message
	// bytes estimates the memory of msgs, dropped ones included until the
	// slice is compacted: what Options.WindowBytes bounds.
	bytes int64
}

// msgSize estimates the memory m takes in a window.
func msgSize(m *shared.Message) int64 {
	return int64(unsafe.Sizeof(*m)) + int64(len(m.Room)+len(m.Author)+len(m.Text)+len(m.ClientMsgID)+len(m.Kind))
}

func newWindow(max int) *window {
	return &window{max: max, msgs: make([]shared.Message, 0, min(max, 64))}
}

// first is the oldest seq held, or 0 when empty.
func (w *window) first() uint64 {
	if len(w.msgs) == 0 {
		return 0
	}
	return w.msgs[0].Seq
}

// push appends m, whose seq must follow the last one held, and drops the
// oldest beyond max. Dropping copies only when the slice has grown to twice
// max, so push is amortised O(1).
func (w *window) push(m shared.Message) {
	w.msgs = append(w.msgs, m)
	w.bytes += msgSize(&m)
	if len(w.msgs) > 2*w.max {
		drop := len(w.msgs) - w.max
		for i := range drop {
			w.bytes -= msgSize(&w.msgs[i])
		}
		kept := make([]shared.Message, w.max, 2*w.max)
		copy(kept, w.msgs[drop:])
		w.msgs = kept
	}
}

// held returns the retained messages, at most max of them.
func (w *window) held() []shared.Message {
	if len(w.msgs) > w.max {
		return w.msgs[len(w.msgs)-w.max:]
	}
	return w.msgs
}

// covers reports whether every held message with seq >= from is in the
// window, i.e. nothing from "from" on must come from the store.
func (w *window) covers(from uint64) bool {
	h := w.held()
	return len(h) > 0 && h[0].Seq <= from
}

// after returns up to limit messages with seq > after, oldest first. The
// result is a copy so callers may use it after the room's lock is released.
func (w *window) after(after uint64, limit int) []shared.Message {
	h := w.held()
	if len(h) == 0 {
		return nil
	}
	i := 0
	if after >= h[0].Seq {
		i = int(after - h[0].Seq + 1)
	}
	if i >= len(h) {
		return nil
	}
	j := min(len(h), i+limit)
	return append([]shared.Message(nil), h[i:j]...)
}

// before returns the newest up to limit messages with seq < before, oldest
// first, as a copy.
func (w *window) before(before uint64, limit int) []shared.Message {
	h := w.held()
	if len(h) == 0 || before <= h[0].Seq {
		return nil
	}
	j := min(len(h), int(before-h[0].Seq))
	i := max(0, j-limit)
	return append([]shared.Message(nil), h[i:j]...)
}
