package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/parley-chat/parley/shared"
)

// ErrClosed is returned by Append after Close.
var ErrClosed = shared.Errorf(shared.CodeUnavailable, "the server is shutting down")

// Options configures a Hub. Zero values take the defaults.
type Options struct {
	// History is how many of each room's newest messages are kept in memory
	// to answer polls without touching the store (default 1000).
	History int
	// MaxRooms bounds the rooms held in memory (default 10000); a request for
	// a new room beyond it fails with over_capacity.
	MaxRooms int
	// MaxBatch bounds how many appends share one store commit (default 256).
	MaxBatch int
	// Now is the clock (default time.Now).
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
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
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

	appends    chan appendReq // unbuffered: a send succeeds only when the writer has the request
	draining   chan struct{}  // closed by Drain: held polls answer at once
	drainOnce  sync.Once
	stop       chan struct{} // closed by Close: the writer finishes
	stopOnce   sync.Once
	writerDone chan struct{}
}

type roomSlot struct {
	ready chan struct{}
	r     *room
	err   error
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
	}
	go h.writer()
	return h
}

// Drain answers every held poll at once, and makes later polls answer without
// waiting, so clients re-poll elsewhere during a shutdown. Appends still work.
func (h *Hub) Drain() { h.drainOnce.Do(func() { close(h.draining) }) }

// Close drains, lets the writer finish the commit in progress and stops it.
// Appends after Close fail with ErrClosed. Close does not close the store.
func (h *Hub) Close() {
	h.Drain()
	h.stopOnce.Do(func() { close(h.stop) })
	<-h.writerDone
}

// room returns the loaded room, loading it from the store on first use. The
// load runs once however many requests ask for the room at the same time.
func (h *Hub) room(ctx context.Context, name string) (*room, error) {
	h.mu.Lock()
	s, ok := h.rooms[name]
	if !ok {
		if len(h.rooms) >= h.opt.MaxRooms {
			h.mu.Unlock()
			return nil, shared.Errorf(shared.CodeOverCapacity, "too many rooms are open")
		}
		s = &roomSlot{ready: make(chan struct{})}
		h.rooms[name] = s
		h.mu.Unlock()
		// One client giving up must not fail the load for the others waiting.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		s.r, s.err = h.load(lctx, name)
		cancel()
		if s.err != nil {
			h.mu.Lock()
			delete(h.rooms, name)
			h.mu.Unlock()
		}
		close(s.ready)
	} else {
		h.mu.Unlock()
		select {
		case <-s.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.r, s.err
}

func (h *Hub) load(ctx context.Context, name string) (*room, error) {
	st, err := h.store.LoadRoom(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("load room %q: %w", name, err)
	}
	r := &room{name: name, epoch: st.Epoch, last: st.Last, win: newWindow(h.opt.History), wake: make(chan struct{})}
	if st.Last > 0 {
		from := max(st.First, 1)
		if st.Last >= uint64(h.opt.History) {
			from = max(from, st.Last-uint64(h.opt.History)+1)
		}
		msgs, err := h.store.Range(ctx, name, from, st.Last, h.opt.History)
		if err != nil {
			return nil, fmt.Errorf("load room %q history: %w", name, err)
		}
		for _, m := range msgs {
			r.win.push(m)
		}
	}
	return r, nil
}

// Append logs m (Room, Kind, Author, Text and ClientMsgID set by the caller)
// and returns it as stored. When m repeats a ClientMsgID of the same author in
// the same room, nothing is stored and the original is returned with dup true.
// A nil error means the store has the message (durably, for a durable store).
func (h *Hub) Append(ctx context.Context, m shared.Message) (stored shared.Message, dup bool, err error) {
	if _, err := h.room(ctx, m.Room); err != nil {
		return shared.Message{}, false, err
	}
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
			req.reply <- appendResp{err: fmt.Errorf("append: %w", errors.Join(shared.Errorf(shared.CodeUnavailable, "the message store failed"), err))}
		}
		return
	}
	h.mu.Lock()
	rooms := make(map[string]*room, 1)
	for _, res := range results {
		if s := h.rooms[res.Message.Room]; s != nil {
			rooms[res.Message.Room] = s.r
		}
	}
	h.mu.Unlock()
	for i, res := range results {
		if !res.Duplicate {
			if r := rooms[res.Message.Room]; r != nil {
				r.publish(res.Message, h.opt.Logger)
			}
		}
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

// Read answers a poll. With neither After nor Before it returns the newest
// Limit messages at once.
func (h *Hub) Read(ctx context.Context, name string, q Query) (shared.PollResponse, error) {
	if q.Limit <= 0 {
		q.Limit = shared.DefaultLimit
	}
	r, err := h.room(ctx, name)
	if err != nil {
		return shared.PollResponse{}, err
	}
	switch {
	case q.Before != nil:
		r.mu.Lock()
		last := r.last
		r.mu.Unlock()
		msgs, err := h.olderThan(ctx, r, min(*q.Before, last+1), q.Limit)
		return r.response(msgs, last, false, false), err
	case q.After == nil:
		return h.latest(ctx, r, q.Limit, false)
	}
	after := *q.After
	r.mu.Lock()
	last := r.last
	r.mu.Unlock()
	if (q.Epoch != "" && q.Epoch != r.epoch) || after > last {
		return h.latest(ctx, r, q.Limit, true)
	}
	var timeout <-chan time.Time
	if q.Wait > 0 {
		t := time.NewTimer(q.Wait)
		defer t.Stop()
		timeout = t.C
	}
	for {
		r.mu.Lock()
		if r.last > after {
			last := r.last
			if r.win.covers(after + 1) {
				msgs := r.win.after(after, q.Limit)
				r.mu.Unlock()
				return r.response(msgs, msgs[len(msgs)-1].Seq, false, false), nil
			}
			r.mu.Unlock()
			return h.catchUp(ctx, r, after, last, q.Limit)
		}
		wake := r.wake
		r.mu.Unlock()
		if q.Wait <= 0 {
			return r.response(nil, after, false, false), nil
		}
		select {
		case <-wake:
		case <-timeout:
			return r.response(nil, after, false, false), nil
		case <-h.draining:
			return r.response(nil, after, false, false), nil
		case <-ctx.Done():
			return r.response(nil, after, false, false), ctx.Err()
		}
	}
}

// catchUp serves a reader whose cursor is older than the window from the
// store, flagging a gap when the store no longer has what follows the cursor.
func (h *Hub) catchUp(ctx context.Context, r *room, after, last uint64, limit int) (shared.PollResponse, error) {
	msgs, err := h.store.Range(ctx, r.name, after+1, last, limit)
	if err != nil {
		return shared.PollResponse{}, fmt.Errorf("read room %q from %d: %w", r.name, after+1, err)
	}
	if len(msgs) == 0 {
		r.mu.Lock()
		msgs = r.win.after(0, limit)
		r.mu.Unlock()
	}
	if len(msgs) == 0 {
		return r.response(nil, after, true, false), nil
	}
	gap := msgs[0].Seq != after+1
	return r.response(msgs, msgs[len(msgs)-1].Seq, gap, false), nil
}

func (h *Hub) latest(ctx context.Context, r *room, limit int, reset bool) (shared.PollResponse, error) {
	r.mu.Lock()
	last := r.last
	r.mu.Unlock()
	msgs, err := h.olderThan(ctx, r, last+1, limit)
	return r.response(msgs, last, false, reset), err
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
		return nil, fmt.Errorf("read room %q history before %d: %w", r.name, top, err)
	}
	return append(older, msgs...), nil
}

// room is one room's state; mu guards last, win and wake.
type room struct {
	name  string
	epoch string

	mu   sync.Mutex
	last uint64
	win  *window
	// wake is closed when a message is published and replaced by a fresh
	// channel: one close wakes every waiter, so publishing costs O(1)
	// whatever the number of readers.
	wake chan struct{}
}

func (r *room) publish(m shared.Message, log *slog.Logger) {
	r.mu.Lock()
	switch {
	case m.Seq <= r.last:
		r.mu.Unlock()
		return // already published
	case m.Seq != r.last+1:
		// Cannot happen with one writer; if a store ever skips, restart the
		// window so that it stays dense rather than serve a hole as data.
		log.Error("non-dense seq from store", "room", r.name, "last", r.last, "seq", m.Seq)
		r.win = newWindow(r.win.max)
	}
	r.win.push(m)
	r.last = m.Seq
	wake := r.wake
	r.wake = make(chan struct{})
	r.mu.Unlock()
	// Closing readies every parked waiter, which the runtime does one by
	// one; doing it after Unlock keeps that work out of the room's lock, so
	// readers and the next publish never wait behind it. A waiter that
	// checks after Unlock sees the new last and does not park.
	close(wake)
}

func (r *room) response(msgs []shared.Message, next uint64, gap, reset bool) shared.PollResponse {
	if msgs == nil {
		msgs = []shared.Message{}
	}
	return shared.PollResponse{Room: r.name, Epoch: r.epoch, Messages: msgs, Next: next, Gap: gap, Reset: reset}
}
