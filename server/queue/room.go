package queue

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/parley-chat/parley/shared"
)

// room is one room's state; mu guards everything below it.
type room struct {
	name string

	mu sync.Mutex
	// epoch changes only when a shared store's log was created anew
	// (Redis restarted without persistence); see replace.
	epoch string
	last  uint64
	win   *window
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
	// acct is the hub's: counted is the window's size as acct has it,
	// unborn whether the room is counted among those without messages.
	// evicted rooms count for nothing: a late publish (a notification,
	// or a writer that found the room just before) may still reach one.
	acct    *accounts
	counted int64
	unborn  bool
	evicted bool
	// paid is set when Admit let a caller create the room, which has no
	// message yet; deciding is closed when Admit's pending decision is made.
	paid     bool
	deciding chan struct{}
	// kept is set, once and for good, when the room has a message or is
	// paid for: it then stays until idle, and a request's unpin need not
	// take the lock to find out (set under mu, read without it).
	kept atomic.Bool
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
	p := newPage(r, r.epoch, msgs, msgs[len(msgs)-1].Seq, false, false)
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
	p := newPage(r, r.epoch, nil, after, false, false)
	if after == r.last {
		r.empty = p
	}
	return p
}

// publish appends msgs (new messages of this room, in seq order, of the
// given epoch; "" when the caller does not know it, as the hub's writer)
// to the window and takes the waiters they answer. Messages the room already
// has are skipped, so the same message may be published by the writer and
// by a notification. The work under the lock is O(len(msgs)) whatever the
// number of waiters.
//
// behind reports that the room cannot take msgs as they are: their epoch is
// not the room's, or a seq skips past last+1 (another process appended
// messages this room has not seen). The messages from there on are not
// published, and the caller must Sync the room, which fills it from the
// store before anyone is woken with what follows the hole.
func (r *room) publish(epoch string, msgs []shared.Message) (ws []*Waiter, d *delivery, behind bool) {
	r.mu.Lock()
	if epoch != "" && epoch != r.epoch {
		r.mu.Unlock()
		return nil, nil, true
	}
	fresh := make([]shared.Message, 0, len(msgs))
	for _, m := range msgs {
		if m.Seq <= r.last {
			continue // already published
		}
		if m.Seq != r.last+1 {
			behind = true
			break
		}
		r.win.push(m)
		r.last = m.Seq
		fresh = append(fresh, m)
	}
	if len(fresh) == 0 {
		r.mu.Unlock()
		return nil, nil, behind
	}
	r.account()
	d = &delivery{room: r, epoch: r.epoch, from: fresh[0].Seq - 1, msgs: fresh}
	r.empty, r.latest, r.pages = nil, d, nil
	ws = r.waiters
	r.waiters = nil
	r.gen++
	r.mu.Unlock()
	return ws, d, behind
}

// replace sets the room to the store's state st and its newest messages
// msgs, when the room cannot simply be filled: the log was created anew
// (another epoch), the store is behind what the room served (messages lost
// by a Redis without fsync), or the room is too far behind to fill its
// window densely. It does nothing and returns ok false when the room
// changed since the caller read it at (epoch, last): the caller syncs again.
// Otherwise it takes every waiter; reset says whether their cursors are
// void (they must be answered with a reset page of held, the room's newest
// messages) or still valid (they re-poll and catch up from the store).
func (r *room) replace(epoch string, last uint64, st RoomState, msgs []shared.Message) (ws []*Waiter, held []shared.Message, reset, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.epoch != epoch || r.last != last {
		return nil, nil, false, false
	}
	reset = st.Epoch != r.epoch || st.Last < r.last
	win := newWindow(r.win.max)
	for _, m := range msgs {
		if m.Seq <= st.Last && (len(win.msgs) == 0 || m.Seq == win.msgs[len(win.msgs)-1].Seq+1) {
			win.push(m)
		}
	}
	if n := len(win.msgs); n > 0 && win.msgs[n-1].Seq != st.Last {
		// The window must end at last, or the next publish would leave a
		// hole in it; readers take what is missing from the store.
		win = newWindow(r.win.max)
	}
	r.epoch, r.last, r.win = st.Epoch, st.Last, win
	r.empty, r.latest, r.pages = nil, nil, nil
	r.account()
	ws = r.waiters
	r.waiters = nil
	r.gen++
	return ws, win.after(0, win.max), reset, true
}

// delivery is what one publish answers: every waiter was at the seq before
// msgs, so its page is msgs cut to its limit, shared by all with that limit.
type delivery struct {
	room  *room
	epoch string
	from  uint64 // the cursor every waiter was at
	msgs  []shared.Message

	once sync.Once
	full *Page

	mu      sync.Mutex
	byLimit map[int]*Page
}

func (d *delivery) page(limit int) *Page {
	if limit >= len(d.msgs) {
		d.once.Do(func() { d.full = newPage(d.room, d.epoch, d.msgs, d.msgs[len(d.msgs)-1].Seq, false, false) })
		return d.full
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.byLimit[limit]
	if p == nil {
		if d.byLimit == nil {
			d.byLimit = make(map[int]*Page)
		}
		p = newPage(d.room, d.epoch, d.msgs[:limit], d.msgs[limit-1].Seq, false, false)
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
