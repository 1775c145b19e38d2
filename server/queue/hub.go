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
