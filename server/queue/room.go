package queue

import (
	"log/slog"
	"runtime"
	"sync"

	"github.com/parley-chat/parley/shared"
)

// room is one room's state; mu guards everything below it.
type room struct {
	name  string
	epoch string

	mu   sync.Mutex
	last uint64
	win  *window
	// waiters are the reads held at last. A publish takes the whole slice
	// and bumps gen, which unlists every one of them in O(1).
	waiters []*Waiter
	gen     uint64
	// empty is the shared "nothing new" page at last, made on first need.
	empty *Page
	// latest is the last publish: readers arriving late at its cursor get
	// its pages, already encoded for the waiters it answered.
	latest *delivery
	// pages are the other pages answered since the last publish, by
	// cursor and limit, so readers at one cursor share one encoding.
	pages map[pageKey]*Page
}

type pageKey struct {
	after uint64
	limit int
}

// maxCachedPages bounds room.pages: a page per distinct (cursor, limit) seen
// between two publishes, which a hostile client could otherwise multiply.
const maxCachedPages = 32

// windowPage answers a reader at after from the window, which covers
// after+1; r.mu is held.
func (r *room) windowPage(after uint64, limit int) *Page {
	if d := r.latest; d != nil && after == d.from {
		return d.page(limit)
	}
	key := pageKey{after, limit}
	if p := r.pages[key]; p != nil {
		return p
	}
	msgs := r.win.after(after, limit)
	p := newPage(r, msgs, msgs[len(msgs)-1].Seq, false, false)
	if len(r.pages) < maxCachedPages {
		if r.pages == nil {
			r.pages = make(map[pageKey]*Page)
		}
		r.pages[key] = p
	}
	return p
}

// list adds w to the held reads; r.mu is held.
func (r *room) list(w *Waiter) {
	w.idx = len(r.waiters)
	w.gen = r.gen
	r.waiters = append(r.waiters, w)
}

// unlist removes w if it is still listed.
func (r *room) unlist(w *Waiter) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if w.gen != r.gen || w.idx < 0 {
		return // taken by a publish or a drain
	}
	last := len(r.waiters) - 1
	if w.idx != last {
		r.waiters[w.idx] = r.waiters[last]
		r.waiters[w.idx].idx = w.idx
	}
	r.waiters[last] = nil
	r.waiters = r.waiters[:last]
	w.idx = -1
}

// takeWaiters unlists and returns every held read.
func (r *room) takeWaiters() []*Waiter {
	r.mu.Lock()
	defer r.mu.Unlock()
	ws := r.waiters
	r.waiters = nil
	r.gen++
	return ws
}

// emptyAt returns a page with no messages for a reader at cursor after.
// Readers at the room's last seq share one, so a wave of timeouts encodes
// one answer.
func (r *room) emptyAt(after uint64) *Page {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.empty != nil && r.empty.Next == after {
		return r.empty
	}
	p := newPage(r, nil, after, false, false)
	if after == r.last {
		r.empty = p
	}
	return p
}

// publish appends msgs (one commit's messages of this room, in seq order)
// to the window and takes the waiters they answer. The work under the lock
// is O(len(msgs)) whatever the number of waiters.
func (r *room) publish(msgs []shared.Message, log *slog.Logger) ([]*Waiter, *delivery) {
	r.mu.Lock()
	fresh := make([]shared.Message, 0, len(msgs))
	for _, m := range msgs {
		switch {
		case m.Seq <= r.last:
			continue // already published
		case m.Seq != r.last+1:
			// Cannot happen with one writer; if a store ever skips, restart
			// the window so that it stays dense rather than serve a hole.
			log.Error("non-dense seq from store", "room", r.name, "last", r.last, "seq", m.Seq)
			r.win = newWindow(r.win.max)
		}
		r.win.push(m)
		r.last = m.Seq
		fresh = append(fresh, m)
	}
	if len(fresh) == 0 {
		r.mu.Unlock()
		return nil, nil
	}
	d := &delivery{room: r, from: fresh[0].Seq - 1, msgs: fresh}
	r.empty, r.latest, r.pages = nil, d, nil
	ws := r.waiters
	r.waiters = nil
	r.gen++
	r.mu.Unlock()
	return ws, d
}

// delivery is what one publish answers: every waiter was at the seq before
// msgs, so its page is msgs cut to its limit, shared by all with that limit.
type delivery struct {
	room *room
	from uint64 // the cursor every waiter was at
	msgs []shared.Message

	once sync.Once
	full *Page

	mu      sync.Mutex
	byLimit map[int]*Page
}

func (d *delivery) page(limit int) *Page {
	if limit >= len(d.msgs) {
		d.once.Do(func() { d.full = newPage(d.room, d.msgs, d.msgs[len(d.msgs)-1].Seq, false, false) })
		return d.full
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.byLimit[limit]
	if p == nil {
		if d.byLimit == nil {
			d.byLimit = make(map[int]*Page)
		}
		p = newPage(d.room, d.msgs[:limit], d.msgs[limit-1].Seq, false, false)
		d.byLimit[limit] = p
	}
	return p
}

// fanJob is a slice of one publish's waiters for one fan-out worker.
type fanJob struct {
	ws []*Waiter
	d  *delivery
	g  *gate
}

func (j fanJob) run() {
	defer j.g.sub()
	for i, w := range j.ws {
		w.fire(j.d.page(w.limit))
		if i%fanYield == fanYield-1 {
			// Answering is a run of system calls that never blocks, so
			// without this a worker keeps its P for a whole time slice
			// while a sender's request, or the goroutine reading the
			// park's epoll events, waits behind it.
			runtime.Gosched()
		}
	}
}

// fanYield is how many answers a fan-out worker writes between yields.
const fanYield = 32

// fanChunk is how many waiters one worker answers per job: large enough to
// amortise the hand-off, small enough that both cores share a big room.
const fanChunk = 256

// fanOut hands a publish's waiters to the workers.
func (h *Hub) fanOut(ws []*Waiter, d *delivery) {
	if len(ws) == 0 {
		return
	}
	h.fanning.add((len(ws) + fanChunk - 1) / fanChunk)
	for len(ws) > 0 {
		n := min(len(ws), fanChunk)
		h.fan <- fanJob{ws: ws[:n:n], d: d, g: &h.fanning}
		ws = ws[n:]
	}
}

// FanningOut returns a channel that is closed once every publish so far has
// been answered to all its waiters, or nil when none is under way. Work
// that competes for the CPU with answering (reading the re-polls of the
// waiters answered first) can wait on it: a message then reaches every
// waiter sooner, as in an event loop that writes to all before it reads.
func (h *Hub) FanningOut() <-chan struct{} { return h.fanning.wait() }

// gate counts fan-out jobs under way.
type gate struct {
	mu   sync.Mutex
	n    int
	done chan struct{}
}

func (g *gate) add(k int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n == 0 {
		g.done = make(chan struct{})
	}
	g.n += k
}

func (g *gate) sub() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.n == 0 {
		close(g.done)
		g.done = nil
	}
}

func (g *gate) wait() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.done
}
