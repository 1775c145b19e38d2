package queue

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-chat/parley/shared"
)

// Options configures a Hub. Zero values take the defaults.
type Options struct {
	// History is how many of each room's newest messages are kept in memory
	// to answer polls without touching the store (default 1000).
	History int
	// MaxRooms bounds the rooms held in memory (default 10000). A room
	// beyond it takes the place of the coldest one nobody is reading; when
	// every room is in use it fails with ErrTooManyRooms. Rooms without
	// messages, which any read can name, may take a quarter of it.
	MaxRooms int
	// IdleTimeout is how long a room nobody reads, waits on or writes to
	// stays in memory (default 2 min). A room without messages leaves as
	// soon as nobody uses it.
	IdleTimeout time.Duration
	// WindowBytes bounds the memory of all rooms' windows together (an
	// estimate of the messages' size; default 256 MiB): beyond it the
	// coldest rooms' windows are trimmed, and their readers are served
	// from the store, as a reader behind a window always is.
	WindowBytes int64
	// MaxBatch bounds how many appends share one store commit (default 256).
	MaxBatch int
	// Tick is how finely held reads time out (default 50ms): a read that
	// asked to wait d answers after d, rounded up to the next tick.
	Tick time.Duration
	// Workers is how many goroutines fan a publish out to its waiters
	// (default GOMAXPROCS).
	Workers int
	// SyncInterval, when set, says the store is shared with other
	// processes (Redis), whose messages reach this hub by Notify: every
	// SyncInterval, each room with held reads has its position checked in
	// the store (Sync), so that a lost notification delays a message by at
	// most that long. A loaded room is also checked once when it is loaded.
	SyncInterval time.Duration
	// Now is the clock of SentAt (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.History <= 0 {
		o.History = 1000
	}
	if o.MaxRooms <= 0 {
		o.MaxRooms = 10000
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 2 * time.Minute
	}
	if o.WindowBytes <= 0 {
		o.WindowBytes = 256 << 20
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.Tick <= 0 {
		o.Tick = 50 * time.Millisecond
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Hub serves the rooms: it appends through one writer goroutine, so that
// concurrent senders share a store commit (one fsync for many messages) and
// each room's messages reach its window in seq order by construction.
type Hub struct {
	store Store
	opt   Options

	mu    sync.Mutex
	rooms map[string]*roomSlot
	// clock counts sweeps: a slot's used is the clock when it was last
	// pinned, which orders rooms from coldest and times out idle ones
	// without reading the time on every request.
	clock     atomic.Int64
	evictions atomic.Uint64
	acct      *accounts

	appends    chan appendReq // unbuffered: a send succeeds only when the writer has the request
	draining   chan struct{}  // closed by Drain: held polls answer at once
	drainOnce  sync.Once
	stop       chan struct{} // closed by Close: the writer finishes
	stopOnce   sync.Once
	writerDone chan struct{}

	wheel   *wheel
	fan     chan fanJob // publishes handed to the fan-out workers
	fanning gate
	workers sync.WaitGroup

	// closeMu orders Notify against Close: a Notify that saw closed false
	// finishes its fan-out before Close closes fan.
	closeMu   sync.RWMutex
	closed    bool
	syncs     *syncQueue
	stopSyncs context.CancelFunc // ends the store calls of syncs in progress
	syncers   sync.WaitGroup
}

// roomSlot is a room's place in Hub.rooms. pins counts the requests using
// the room now (taken under Hub.mu, given back without it): a pinned room
// is never evicted, so a request never sees its room leave under it.
type roomSlot struct {
	ready chan struct{}
	r     *room
	err   error
	pins  atomic.Int32
	used  atomic.Int64
}

type appendReq struct {
	msg   shared.Message
	reply chan appendResp // buffered 1, so the writer never waits for a caller that left
}

type appendResp struct {
	res Result
	err error
}

// New returns a Hub over store and starts its writer goroutine; Close stops it.
func New(store Store, opt Options) *Hub {
	opt.setDefaults()
	h := &Hub{
		store:      store,
		opt:        opt,
		rooms:      make(map[string]*roomSlot),
		appends:    make(chan appendReq),
		draining:   make(chan struct{}),
		stop:       make(chan struct{}),
		writerDone: make(chan struct{}),
		wheel:      newWheel(opt.Tick, time.Now()),
		fan:        make(chan fanJob, 1024),
		syncs:      newSyncQueue(),
		acct:       &accounts{budget: opt.WindowBytes, over: make(chan struct{}, 1)},
	}
	var syncCtx context.Context
	syncCtx, h.stopSyncs = context.WithCancel(context.Background())
	h.runSync(syncCtx)
	go h.writer()
	h.workers.Add(2 + opt.Workers)
	go func() {
		defer h.workers.Done()
		h.wheel.run(h.stop)
	}()
	go func() {
		defer h.workers.Done()
		h.runSweep(h.stop)
	}()
	for range opt.Workers {
		go func() {
			defer h.workers.Done()
			for job := range h.fan {
				job.run()
			}
		}()
	}
	return h
}

// Drain answers every held poll at once, and makes later polls answer without
// waiting, so clients re-poll elsewhere during a shutdown. Appends still work.
func (h *Hub) Drain() {
	h.drainOnce.Do(func() {
		close(h.draining)
		// A room still loading will see draining when it lists a waiter.
		for _, r := range h.loadedRooms() {
			for _, w := range r.takeWaiters() {
				w.expire()
			}
		}
	})
}

func (h *Hub) isDraining() bool {
	select {
	case <-h.draining:
		return true
	default:
		return false
	}
}

// Close drains, lets the writer finish the commit in progress and stops it.
// Appends after Close fail with ErrClosed. Close does not close the store.
func (h *Hub) Close() {
	h.Drain()
	h.stopOnce.Do(func() {
		h.closeMu.Lock()
		h.closed = true
		h.closeMu.Unlock()
		h.stopSyncs()
		close(h.stop)
		<-h.writerDone
		h.syncers.Wait()
		close(h.fan) // the writer and the syncers were its last senders
		h.workers.Wait()
	})
	<-h.writerDone
}

// Rooms returns how many rooms are held in memory (loaded or loading), for
// metrics.
func (h *Hub) Rooms() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.rooms)
}

// pin returns the room's slot, loaded, and pinned: the caller must unpin
// it when done. The load runs once however many requests ask for the room
// at the same time. A read (write false) of a new room without messages
// fails with ErrTooManyRooms when such rooms already take their share.
func (h *Hub) pin(ctx context.Context, name string, write bool) (*roomSlot, error) {
	for {
		s, err := h.pinOnce(ctx, name, write)
		if err == errEmptyShare && write {
			continue // a read's refusal is no reason to refuse a write
		}
		return s, err
	}
}

func (h *Hub) pinOnce(ctx context.Context, name string, write bool) (*roomSlot, error) {
	h.mu.Lock()
	s, ok := h.rooms[name]
	if ok {
		s.pins.Add(1)
		s.touch(h.clock.Load())
		h.mu.Unlock()
		select {
		case <-s.ready:
		case <-ctx.Done():
			// Not a room's last use to act on: a room left behind
			// without messages goes at the next sweep.
			s.pins.Add(-1)
			return nil, ctx.Err()
		}
		if s.err != nil {
			s.pins.Add(-1)
			return nil, s.err
		}
		return s, nil
	}
	if len(h.rooms) >= h.opt.MaxRooms && !h.evictColdestLocked() {
		h.mu.Unlock()
		return nil, ErrTooManyRooms
	}
	s = &roomSlot{ready: make(chan struct{})}
	s.pins.Store(1)
	s.used.Store(h.clock.Load())
	h.rooms[name] = s
	h.mu.Unlock()
	// One client giving up must not fail the load for the others waiting.
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	s.r, s.err = h.load(lctx, name)
	cancel()
	if s.err == nil && s.r.last == 0 {
		if h.acct.takeEmpty(h.opt.MaxRooms, write) {
			s.r.unborn = true
		} else {
			s.r, s.err = nil, errEmptyShare
		}
	}
	if s.err != nil {
		h.mu.Lock()
		delete(h.rooms, name)
		h.mu.Unlock()
		close(s.ready)
		return nil, s.err
	}
	close(s.ready)
	if h.opt.SyncInterval > 0 {
		// Notifications that arrived while the room was loading were
		// dropped (it was not loaded yet): check it once.
		h.syncs.mark(s.r)
	}
	return s, nil
}

func (h *Hub) load(ctx context.Context, name string) (*room, error) {
	st, err := h.store.LoadRoom(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("%w: load room %q: %w", ErrStore, name, err)
	}
	r := &room{name: name, epoch: st.Epoch, last: st.Last, win: newWindow(h.opt.History), acct: h.acct}
	if st.Last > 0 {
		from := max(st.First, 1)
		if st.Last >= uint64(h.opt.History) {
			from = max(from, st.Last-uint64(h.opt.History)+1)
		}
		msgs, err := h.store.Range(ctx, name, from, st.Last, h.opt.History)
		if err != nil {
			return nil, fmt.Errorf("%w: load room %q history: %w", ErrStore, name, err)
		}
		for _, m := range msgs {
			r.win.push(m)
		}
		r.account()
	}
	return r, nil
}

// Append logs m (Room, Kind, Author, Text and ClientMsgID set by the caller)
// and returns it as stored. When m repeats a ClientMsgID of the same author in
// the same room, nothing is stored and the original is returned with dup true.
// A nil error means the store has the message (durably, for a durable store).
func (h *Hub) Append(ctx context.Context, m shared.Message) (stored shared.Message, dup bool, err error) {
	// The room stays pinned until the writer has published the message
	// to it, so it cannot be evicted with the message on its way.
	s, err := h.pin(ctx, m.Room, true)
	if err != nil {
		return shared.Message{}, false, err
	}
	defer h.unpin(s)
	m.Seq = 0
	m.SentAt = h.opt.Now().UTC().Truncate(time.Millisecond)
	req := appendReq{msg: m, reply: make(chan appendResp, 1)}
	select {
	case h.appends <- req:
	case <-h.writerDone:
		return shared.Message{}, false, ErrClosed
	case <-ctx.Done():
		return shared.Message{}, false, ctx.Err()
	}
	// Once handed over the message will be committed whatever the caller
	// does; a retry with the same ClientMsgID finds it.
	select {
	case resp := <-req.reply:
		return resp.res.Message, resp.res.Duplicate, resp.err
	case <-ctx.Done():
		return shared.Message{}, false, ctx.Err()
	}
}

func (h *Hub) writer() {
	defer close(h.writerDone)
	batch := make([]appendReq, 0, h.opt.MaxBatch)
	for {
		batch = batch[:0]
		select {
		case req := <-h.appends:
			batch = append(batch, req)
		case <-h.stop:
			return
		}
		// Senders that arrived while the last commit was running are blocked
		// on the channel now; taking them all is the group commit.
	more:
		for len(batch) < h.opt.MaxBatch {
			select {
			case req := <-h.appends:
				batch = append(batch, req)
			default:
				break more
			}
		}
		h.commit(batch)
	}
}

func (h *Hub) commit(batch []appendReq) {
	msgs := make([]shared.Message, len(batch))
	for i, req := range batch {
		msgs[i] = req.msg
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	results, err := h.store.Append(ctx, msgs)
	cancel()
	if err == nil && len(results) != len(batch) {
		err = fmt.Errorf("store returned %d results for %d messages", len(results), len(batch))
	}
	if err != nil {
		h.opt.Logger.Error("append failed", "messages", len(batch), "err", err)
		for _, req := range batch {
			req.reply <- appendResp{err: fmt.Errorf("%w: append: %w", ErrStore, err)}
		}
		return
	}
	// Each room's new messages are published together, so waiters woken by
	// one commit get every message of it in one answer.
	h.mu.Lock()
	byRoom := make(map[*room][]shared.Message, 1)
	var order []*room
	for _, res := range results {
		if res.Duplicate {
			continue
		}
		if s := h.rooms[res.Message.Room]; s != nil && s.r != nil {
			if _, seen := byRoom[s.r]; !seen {
				order = append(order, s.r)
			}
			byRoom[s.r] = append(byRoom[s.r], res.Message)
		}
	}
	h.mu.Unlock()
	for _, r := range order {
		ws, d, behind := r.publish("", byRoom[r])
		if d != nil {
			h.fanOut(ws, d)
		}
		if behind {
			// Another process appended to the room in between, and its
			// notification has not come yet (or was lost): fill from the
			// store rather than serve a hole. With a store of our own
			// this cannot happen.
			if h.opt.SyncInterval <= 0 {
				h.opt.Logger.Error("non-dense seq from store", "room", r.name)
			}
			h.syncs.mark(r)
		}
	}
	for i, res := range results {
		batch[i].reply <- appendResp{res: res}
	}
}

// Query is one read of a room's log.
type Query struct {
	// After is the reader's cursor: return messages with seq > After,
	// waiting up to Wait for one if there are none.
	After *uint64
	// Before asks for the page of messages older than this seq; no waiting.
	Before *uint64
	// Epoch is the epoch of the reader's cursor; a different one (or an
	// After beyond the log's end) answers Reset with the latest messages.
	Epoch string
	Limit int
	Wait  time.Duration
}

// Watch answers q at once when it can, returning the page and a nil
// Waiter. Otherwise it holds the read and returns its Waiter: rcv is told the
// answer exactly once, when a message arrives, when q.Wait has passed, when
// the hub drains or when the Waiter is released; Cancel withdraws it. A held
// read costs the hub no goroutine and no timer. With neither After nor Before
// it returns the newest Limit messages at once.
func (h *Hub) Watch(ctx context.Context, name string, q Query, rcv Receiver) (*Page, *Waiter, error) {
	if q.Limit <= 0 {
		q.Limit = shared.DefaultLimit
	}
	s, err := h.pin(ctx, name, false)
	if err != nil {
		return nil, nil, err
	}
	// A listed waiter keeps the room in memory once this pin is gone.
	defer h.unpin(s)
	r := s.r
	switch {
	case q.Before != nil:
		r.mu.Lock()
		epoch, last := r.epoch, r.last
		r.mu.Unlock()
		msgs, err := h.olderThan(ctx, r, min(*q.Before, last+1), q.Limit)
		if err != nil {
			return nil, nil, err
		}
		return newPage(r, epoch, msgs, last, false, false), nil, nil
	case q.After == nil:
		p, err := h.latest(ctx, r, q.Limit, false)
		return p, nil, err
	}
	after := *q.After
	if h.opt.SyncInterval > 0 {
		r.mu.Lock()
		ahead := (q.Epoch != "" && q.Epoch != r.epoch) || after > r.last
		r.mu.Unlock()
		if ahead {
			// With a shared store the cursor may come from another
			// instance that is ahead of this one (a load balancer moves
			// polls freely): catch up with the store before calling the
			// cursor void.
			if err := h.syncNow(ctx, r); err != nil {
				return nil, nil, err
			}
		}
	}
	r.mu.Lock()
	switch {
	case (q.Epoch != "" && q.Epoch != r.epoch) || after > r.last:
		r.mu.Unlock()
		p, err := h.latest(ctx, r, q.Limit, true)
		return p, nil, err
	case r.last > after:
		if r.win.covers(after + 1) {
			p := r.windowPage(after, q.Limit)
			r.mu.Unlock()
			return p, nil, nil
		}
		epoch, last := r.epoch, r.last
		r.mu.Unlock()
		p, err := h.catchUp(ctx, r, epoch, after, last, q.Limit)
		return p, nil, err
	case q.Wait <= 0 || h.isDraining():
		r.mu.Unlock()
		return r.emptyAt(after), nil, nil
	}
	w := &Waiter{room: r, wheel: h.wheel, rcv: rcv, after: after, limit: q.Limit}
	r.list(w)
	r.mu.Unlock()
	h.wheel.add(w, time.Now().Add(q.Wait))
	return nil, w, nil
}

// Read is Watch for a caller that can block: it returns the answer, or
// ctx's error if ctx ends first. It never returns both.
func (h *Hub) Read(ctx context.Context, name string, q Query) (*Page, error) {
	ch := make(chanReceiver, 1)
	p, w, err := h.Watch(ctx, name, q, ch)
	if err != nil || w == nil {
		return p, err
	}
	select {
	case p := <-ch:
		return p, nil
	case <-ctx.Done():
		if w.Cancel() {
			return nil, ctx.Err()
		}
		return <-ch, nil
	}
}

// chanReceiver hands the page to a blocked Read.
type chanReceiver chan *Page

func (c chanReceiver) Deliver(p *Page) { c <- p }

// catchUp serves a reader whose cursor is older than the window from the
// store, flagging a gap when the store no longer has what follows the cursor.
func (h *Hub) catchUp(ctx context.Context, r *room, epoch string, after, last uint64, limit int) (*Page, error) {
	msgs, err := h.store.Range(ctx, r.name, after+1, last, limit)
	if err != nil {
		return nil, fmt.Errorf("%w: read room %q from %d: %w", ErrStore, r.name, after+1, err)
	}
	if len(msgs) == 0 {
		r.mu.Lock()
		msgs = r.win.after(0, limit)
		r.mu.Unlock()
	}
	if len(msgs) == 0 {
		return newPage(r, epoch, nil, after, true, false), nil
	}
	gap := msgs[0].Seq != after+1
	return newPage(r, epoch, msgs, msgs[len(msgs)-1].Seq, gap, false), nil
}

func (h *Hub) latest(ctx context.Context, r *room, limit int, reset bool) (*Page, error) {
	r.mu.Lock()
	epoch, last := r.epoch, r.last
	r.mu.Unlock()
	msgs, err := h.olderThan(ctx, r, last+1, limit)
	if err != nil {
		return nil, err
	}
	return newPage(r, epoch, msgs, last, false, reset), nil
}

// olderThan returns the newest up to limit messages with seq < end, oldest
// first, from the window and, below it, from the store.
func (h *Hub) olderThan(ctx context.Context, r *room, end uint64, limit int) ([]shared.Message, error) {
	r.mu.Lock()
	msgs := r.win.before(end, limit)
	r.mu.Unlock()
	need := limit - len(msgs)
	top := end
	if len(msgs) > 0 {
		top = msgs[0].Seq
	}
	if need <= 0 || top <= 1 {
		return msgs, nil
	}
	from := uint64(1)
	if top-1 >= uint64(need) {
		from = top - uint64(need)
	}
	older, err := h.store.Range(ctx, r.name, from, top-1, need)
	if err != nil {
		return nil, fmt.Errorf("%w: read room %q history before %d: %w", ErrStore, r.name, top, err)
	}
	return append(older, msgs...), nil
}
