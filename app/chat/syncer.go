package chat

import (
	"context"
	"sync"
	"time"

	"github.com/parley-chat/parley/app/api"
	"github.com/parley-chat/parley/shared"
)

// API is what the Syncer needs from the server; *api.Client implements it.
type API interface {
	Joiner
	Send(ctx context.Context, token, room string, req shared.SendRequest) (shared.Message, error)
	Poll(ctx context.Context, token, room string, req shared.PollRequest) (shared.PollResponse, error)
	Members(ctx context.Context, room string) (shared.MembersResponse, error)
}

var _ API = (*api.Client)(nil)

// ConnState is what the connection indicator shows.
type ConnState string

// Connection states, also the indicator's data-state values.
const (
	Connected    ConnState = "connected"
	Reconnecting ConnState = "reconnecting"
	Offline      ConnState = "offline"
)

// Config holds a Syncer's dependencies. Room, API, Store, Sessions, Bus and
// Locks are required.
type Config struct {
	Room     string
	API      API
	Store    Storage
	Sessions *Sessions
	Bus      Bus
	Locks    Locker

	// Online reports the browser's navigator.onLine; nil means always.
	Online func() bool
	Now    func() time.Time
	Rand   func() float64
	NewID  func() string
	// Yield, when set, is called before each step that costs the
	// browser's one thread a few milliseconds (applying a batch, encoding
	// it for the other tabs, writing the cache): the page returns there to
	// the event loop, so a burst is many short tasks, not a few long ones.
	// It must return once the page is going away.
	Yield func()

	// Window is how many of the newest entries each View on Updates holds
	// (all when <= 0); SetWindow changes it.
	Window int
	// PollWait is the long poll's wait in seconds (default 25).
	PollWait int
	// MaxMessages bounds the messages held in memory (default 5000).
	MaxMessages int
	// CacheMessages is how many recent messages are persisted so that a
	// reload or an offline start shows them at once (default 200).
	CacheMessages int
	// BackoffBase and BackoffMax bound retry delays (default 500 ms, 8 s).
	BackoffBase, BackoffMax time.Duration
}

// View is a snapshot of a room for rendering.
type View struct {
	Room string
	Conn ConnState
	// Leader is true in the one tab that long-polls this room.
	Leader bool
	// Entries are the newest messages, at most the window asked for. Views
	// share it while it does not change: read it, never write to it.
	Entries []Entry
	// Hidden counts older messages held but outside the window.
	Hidden int
	// MoreOnServer is true when the server has messages older than all held.
	MoreOnServer bool
	Members      []shared.Member
	// Outbox lists the user's unacknowledged messages, oldest first.
	Outbox []Item
	// NeedJoin is set (to an error code) when there is no usable session:
	// the UI must ask for a name again.
	NeedJoin string
	// Fatal is an error code that stops the room (e.g. invalid_room).
	Fatal string
}

// Syncer keeps one room's timeline up to date. In every tab its follower
// side listens to the room's bus channel; in the tab that wins the room's
// lock its leader side also long-polls the server, broadcasts each batch and
// connection change to the others, and sends the outbox. So a browser holds
// one long poll per room however many tabs are open. Each change reaches
// the UI as a View on Updates.
type Syncer struct {
	cfg    Config
	state  *roomState
	outbox *Outbox

	chMu sync.Mutex
	ch   Channel

	winMu  sync.Mutex
	window int

	leadMu sync.Mutex
	lead   *leader // while this tab leads

	dirty     chan struct{}
	updates   chan View
	wake      chan struct{}
	flushKick chan struct{}
	catchKick chan struct{}
}

// NewSyncer returns a Syncer for cfg.Room; Run starts it.
func NewSyncer(cfg Config) *Syncer {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewID == nil {
		cfg.NewID = api.NewClientMsgID
	}
	if cfg.Online == nil {
		cfg.Online = func() bool { return true }
	}
	if cfg.PollWait == 0 {
		cfg.PollWait = shared.DefaultWaitSeconds
	}
	if cfg.CacheMessages == 0 {
		cfg.CacheMessages = 200
	}
	if cfg.BackoffBase == 0 {
		cfg.BackoffBase = 500 * time.Millisecond
	}
	if cfg.BackoffMax == 0 {
		cfg.BackoffMax = 8 * time.Second
	}
	return &Syncer{
		cfg:       cfg,
		state:     newRoomState(cfg.Room, cfg.MaxMessages),
		outbox:    NewOutbox(cfg.Store, cfg.Room),
		window:    cfg.Window,
		dirty:     make(chan struct{}, 1),
		updates:   make(chan View),
		wake:      make(chan struct{}, 1),
		flushKick: make(chan struct{}, 1),
		catchKick: make(chan struct{}, 1),
	}
}

// Run syncs the room until ctx ends, then releases the poll lock (so another
// tab takes over) and returns once every goroutine it started has ended.
func (s *Syncer) Run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	goRun := func(f func(context.Context)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(ctx)
		}()
	}
	goRun(s.publish)

	var c roomCache
	if getJSON(s.cfg.Store, keyRoomCache+s.cfg.Room, &c) {
		s.state.restore(c)
	}
	s.changed()

	f := &follower{s: s}
	ch := s.cfg.Bus.Open("parley:room:"+s.cfg.Room, f.onBus)
	s.chMu.Lock()
	s.ch = ch
	s.chMu.Unlock()
	defer ch.Close()
	s.post(helloEvent{})
	goRun(f.run)

	if release, err := s.cfg.Locks.Acquire(ctx, "parley:poll:"+s.cfg.Room); err == nil {
		s.state.setLeader()
		s.changed()
		l := &leader{s: s}
		s.leadMu.Lock()
		s.lead = l
		s.leadMu.Unlock()
		l.run(ctx)
		s.leadMu.Lock()
		s.lead = nil
		s.leadMu.Unlock()
		release()
	}
	cancel()
}

// Updates delivers the room's View after each change. It coalesces: a
// reader that is busy gets the newest View next, never a backlog, so the UI
// does one render's work per View however fast messages come.
func (s *Syncer) Updates() <-chan View { return s.updates }

// SetWindow sets how many entries the Views on Updates hold, and sends one.
func (s *Syncer) SetWindow(n int) {
	s.winMu.Lock()
	s.window = n
	s.winMu.Unlock()
	s.changed()
}

func (s *Syncer) currentWindow() int {
	s.winMu.Lock()
	defer s.winMu.Unlock()
	return s.window
}

// publish builds a View when the state changed and hands it to Updates;
// changes while it waits for the reader replace the View it offers.
func (s *Syncer) publish(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.dirty:
		}
		v := s.View(s.currentWindow())
		for sent := false; !sent; {
			select {
			case <-ctx.Done():
				return
			case s.updates <- v:
				sent = true
			case <-s.dirty:
				v = s.View(s.currentWindow())
			}
		}
	}
}

// View returns the state with at most window entries (all when <= 0).
func (s *Syncer) View(window int) View { return s.state.view(window, s.outbox.Items()) }

// Send validates text with the server's rules, queues it in the persisted
// outbox and has the leader tab send it. The returned error is a
// *shared.Error when the text is refused.
func (s *Syncer) Send(text string) (Item, error) {
	text, err := shared.NormalizeText(text)
	if err != nil {
		return Item{}, err
	}
	it, err := s.outbox.Add(s.cfg.NewID(), text, s.cfg.Now())
	if err != nil {
		return Item{}, err
	}
	s.outboxChanged()
	return it, nil
}

// Retry queues a failed item again.
func (s *Syncer) Retry(id string) {
	if s.outbox.SetState(id, ItemPending, "") {
		s.outboxChanged()
	}
}

// Discard drops an item the user gave up on.
func (s *Syncer) Discard(id string) {
	if s.outbox.Remove(id) {
		s.outboxChanged()
	}
}

// Wake cuts short any wait for a retry, in this tab and in the leader tab:
// the browser came back online, or the user joined again.
func (s *Syncer) Wake() {
	s.wakeLocal()
	s.post(wakeEvent{})
}

// OutboxStored tells the Syncer that another tab changed the outbox in
// storage (the browser's storage event). It is a second path beside the
// bus message, so a lost message never strands a queued text.
func (s *Syncer) OutboxStored() {
	s.changed()
	notify(s.flushKick)
}

// LoadOlder fetches one page of history older than the oldest message held
// and returns how many messages it added.
func (s *Syncer) LoadOlder(ctx context.Context, limit int) (int, error) {
	oldest, epoch := s.state.oldest()
	if oldest <= 1 {
		return 0, nil
	}
	resp, err := s.cfg.API.Poll(ctx, "", s.cfg.Room, shared.PollRequest{Before: &oldest, Epoch: epoch, Limit: &limit})
	if err != nil {
		return 0, err
	}
	n := s.state.prepend(resp)
	s.changed()
	return n, nil
}

func (s *Syncer) wakeLocal() {
	notify(s.wake)
	notify(s.catchKick)
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// yield lets the browser run between two costly steps; see Config.Yield.
func (s *Syncer) yield() {
	if s.cfg.Yield != nil {
		s.cfg.Yield()
	}
}

// changed has publish send a new View.
func (s *Syncer) changed() { notify(s.dirty) }

func (s *Syncer) post(e busEvent) {
	s.chMu.Lock()
	ch := s.ch
	s.chMu.Unlock()
	if ch == nil {
		return
	}
	if b, err := encodeEvent(e); err == nil {
		ch.Post(b)
	}
}

// outboxChanged tells the other tabs and this one's UI, and has the leader
// (this tab or another) send what is pending.
func (s *Syncer) outboxChanged() {
	s.changed()
	s.post(outboxEvent{})
	notify(s.flushKick)
}

// received applies messages from a poll or a broadcast batch, drops the
// outbox items whose message arrived (the answer to their send was lost,
// but the server stored them) and publishes the change.
func (s *Syncer) received(resp shared.PollResponse) Result {
	res := s.state.apply(resp)
	arrived := map[string]bool{}
	for _, m := range res.Added {
		if m.ClientMsgID != "" {
			arrived[m.ClientMsgID] = true
		}
	}
	if len(arrived) > 0 {
		for _, it := range s.outbox.Items() {
			if arrived[it.ID] {
				s.outbox.Remove(it.ID)
			}
		}
	}
	s.changed()
	return res
}

// setConn records the connection state; the leader tells the other tabs.
// A follower's own observations never go on the bus: they only stand
// until a leader speaks.
func (s *Syncer) setConn(c ConnState, authoritative bool) {
	if !s.state.setConn(c) {
		return
	}
	if authoritative && s.state.isLeader() {
		s.post(s.state.status())
	}
	s.changed()
}

// sleep waits d, or less when woken; it reports false when ctx ended.
func (s *Syncer) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-s.wake:
	}
	return true
}
