package chat

import (
	"context"
	"sync"
)

// Bus carries messages between the tabs of one browser (BroadcastChannel in
// the browser). Like BroadcastChannel, a channel does not receive its own
// posts, and one sender's posts arrive in order.
type Bus interface {
	// Open joins the named channel; on is called for every message other
	// channels of that name post, one at a time.
	Open(name string, on func(data []byte)) Channel
}

// Channel is one tab's end of a Bus channel.
type Channel interface {
	Post(data []byte)
	Close()
}

// Locker grants named locks that are exclusive across the tabs of one
// browser (the Web Locks API in the browser). The holder of a room's lock is
// the one tab that long-polls it.
type Locker interface {
	// Acquire blocks until the lock is held or ctx ends. release must be
	// called exactly once to let the next waiter in.
	Acquire(ctx context.Context, name string) (release func(), err error)
}

// MemBus is an in-process Bus: one per simulated browser in tests, and the
// bus of a browser without BroadcastChannel (then the tab is alone).
type MemBus struct {
	mu    sync.Mutex
	chans map[string]map[*memChannel]struct{}
}

// NewMemBus returns an empty MemBus.
func NewMemBus() *MemBus { return &MemBus{chans: map[string]map[*memChannel]struct{}{}} }

type memChannel struct {
	bus  *MemBus
	name string
	on   func([]byte)

	mu     sync.Mutex
	queue  [][]byte
	wake   chan struct{}
	closed chan struct{}
	done   chan struct{}
}

// Open joins the named channel.
func (b *MemBus) Open(name string, on func([]byte)) Channel {
	c := &memChannel{bus: b, name: name, on: on, wake: make(chan struct{}, 1), closed: make(chan struct{}), done: make(chan struct{})}
	b.mu.Lock()
	if b.chans[name] == nil {
		b.chans[name] = map[*memChannel]struct{}{}
	}
	b.chans[name][c] = struct{}{}
	b.mu.Unlock()
	go c.deliver()
	return c
}

// deliver hands queued messages to on, one at a time and in order, the way
// a browser dispatches message events; posting never waits for a receiver.
func (c *memChannel) deliver() {
	defer close(c.done)
	for {
		select {
		case <-c.closed:
			return
		case <-c.wake:
		}
		for {
			c.mu.Lock()
			if len(c.queue) == 0 {
				c.mu.Unlock()
				break
			}
			m := c.queue[0]
			c.queue = c.queue[1:]
			c.mu.Unlock()
			select {
			case <-c.closed:
				return
			default:
			}
			c.on(m)
		}
	}
}

func (c *memChannel) Post(data []byte) {
	c.bus.mu.Lock()
	var peers []*memChannel
	for p := range c.bus.chans[c.name] {
		if p != c {
			peers = append(peers, p)
		}
	}
	c.bus.mu.Unlock()
	for _, p := range peers {
		p.mu.Lock()
		p.queue = append(p.queue, append([]byte(nil), data...))
		p.mu.Unlock()
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

func (c *memChannel) Close() {
	c.bus.mu.Lock()
	if _, ok := c.bus.chans[c.name][c]; !ok {
		c.bus.mu.Unlock()
		return
	}
	delete(c.bus.chans[c.name], c)
	c.bus.mu.Unlock()
	close(c.closed)
	<-c.done
}

// MemLocker is an in-process Locker, for tests and for browsers without
// the Web Locks API (where every tab then leads its own poll).
type MemLocker struct {
	mu    sync.Mutex
	locks map[string]chan struct{}
}

// NewMemLocker returns a MemLocker with no lock held.
func NewMemLocker() *MemLocker { return &MemLocker{locks: map[string]chan struct{}{}} }

// Acquire blocks until name is free or ctx ends.
func (l *MemLocker) Acquire(ctx context.Context, name string) (func(), error) {
	l.mu.Lock()
	ch, ok := l.locks[name]
	if !ok {
		// A one-slot semaphore: holding the lock means having put the token.
		ch = make(chan struct{}, 1)
		l.locks[name] = ch
	}
	l.mu.Unlock()
	select {
	case ch <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-ch }) }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
