package session

import (
	"context"
	"sync"
	"time"
)

// Cursor is a textbook reader's position in lobby: the /get_msg/ endpoint
// keeps one per name, as the textbook kept a queue per name.
type Cursor struct {
	Epoch string
	Seq   uint64
}

// CursorStore keeps the textbook readers' cursors: in this process's memory
// (MemCursors), in the bolt file so that they survive a restart, or in
// Redis so that every instance shares them.
type CursorStore interface {
	// Cursor returns name's cursor; ok is false when name has none.
	Cursor(ctx context.Context, name string) (c Cursor, ok bool, err error)
	// AdvanceCursor sets name's cursor to next if it is at *old (absent
	// when old is nil) and reports whether it did: a compare-and-set, so
	// that two requests for one name, on any instances, never both take
	// the same message.
	AdvanceCursor(ctx context.Context, name string, old *Cursor, next Cursor) (bool, error)
}

var _ CursorStore = (*MemCursors)(nil)

// MemCursors is a CursorStore in memory, bounded: beyond max names the
// least recently used is forgotten.
type MemCursors struct {
	max int

	mu      sync.Mutex
	cursors map[string]*memCursor
}

type memCursor struct {
	cur  Cursor
	used time.Time
}

// NewMemCursors returns an empty MemCursors for up to max names.
func NewMemCursors(max int) *MemCursors {
	return &MemCursors{max: max, cursors: make(map[string]*memCursor)}
}

// Cursor implements CursorStore.
func (c *MemCursors) Cursor(_ context.Context, name string) (Cursor, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.cursors[name]
	if e == nil {
		return Cursor{}, false, nil
	}
	e.used = time.Now()
	return e.cur, true, nil
}

// AdvanceCursor implements CursorStore.
func (c *MemCursors) AdvanceCursor(_ context.Context, name string, old *Cursor, next Cursor) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.cursors[name]
	switch {
	case e == nil && old == nil:
		if len(c.cursors) >= c.max {
			c.evictOldestLocked()
		}
		c.cursors[name] = &memCursor{cur: next, used: time.Now()}
		return true, nil
	case e == nil || old == nil || e.cur != *old:
		return false, nil
	}
	e.cur, e.used = next, time.Now()
	return true, nil
}

func (c *MemCursors) evictOldestLocked() {
	var oldest string
	var t time.Time
	for name, e := range c.cursors {
		if oldest == "" || e.used.Before(t) {
			oldest, t = name, e.used
		}
	}
	delete(c.cursors, oldest)
}
