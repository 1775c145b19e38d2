package queue

import (
	"errors"
	"sync"

	"github.com/parley-chat/parley/shared"
)

// Errors of the core. The HTTP layer maps them to codes and statuses; the
// core knows nothing of either.
var (
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("queue: hub closed")
	// ErrTooManyRooms is returned for a new room beyond Options.MaxRooms.
	ErrTooManyRooms = errors.New("queue: too many rooms open")
	// ErrStore wraps every failure of the store, so callers can tell
	// "retry later" apart from a bad request.
	ErrStore = errors.New("queue: store failed")
)

// Page is one answer of a room's log to a reader. A Page handed to a
// Receiver is shared by every reader woken by the same publish with the
// same cursor and limit: it must be treated as read-only.
type Page struct {
	Room     string
	Epoch    string
	Messages []shared.Message
	// Next is the cursor to read after next.
	Next uint64
	// Gap is true when messages after the cursor are no longer retained.
	Gap bool
	// Reset is true when the cursor's epoch is not the room's, or the
	// cursor is beyond the log's end: the reader starts again from Messages.
	Reset bool

	enc struct {
		once sync.Once
		b    []byte
	}
}

// Encoded returns encode(p), computed once however many readers share p:
// fanning a message out to ten thousand waiters encodes it once.
func (p *Page) Encoded(encode func(*Page) []byte) []byte {
	p.enc.once.Do(func() { p.enc.b = encode(p) })
	return p.enc.b
}

// newPage makes a page of room r at epoch, which the caller read under r.mu
// together with the state the page answers from: a room's epoch changes
// when a shared store's log is created anew (see Hub.Sync).
func newPage(r *room, epoch string, msgs []shared.Message, next uint64, gap, reset bool) *Page {
	if msgs == nil {
		msgs = []shared.Message{}
	}
	return &Page{Room: r.name, Epoch: epoch, Messages: msgs, Next: next, Gap: gap, Reset: reset}
}
