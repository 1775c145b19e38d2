package chat

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/parley-chat/parley/app/api"
	"github.com/parley-chat/parley/shared"
)

// API is what the Syncer needs from the server; *api.Client implements it.
type API interface {
	Join(ctx context.Context, name string) (shared.SessionResponse, error)
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

// Config holds a Syncer's dependencies. Room, API, Store, Bus and Locks are
// required.
type Config struct {
	Room  string
	API   API
	Store Storage
	Bus   Bus
	Locks Locker

	// OnChange is called, from any goroutine, after the state changed; the
	// UI then reads View. It must not block.
	OnChange func()
	// Online reports the browser's navigator.onLine; nil means always.
	Online func() bool
	Now    func() time.Time
	Rand   func() float64
	NewID  func() string

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
	// Entries are the newest messages, at most the window asked for.
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

// Syncer keeps one room's timeline up to date. In every tab it listens to
// the room's bus channel; the tab that wins the room's lock also long-polls
// the server, broadcasts each batch and connection change to the others,
// and sends the outbox. So a browser holds one long poll per room however
// many tabs are open.
type Syncer struct {
	cfg    Config
	outbox *Outbox

	mu       sync.Mutex
	tl       *Timeline
	conn     ConnState
	leader   bool
	members  []shared.Member
	items    []Item
	needJoin string
	fatal    string
	netFails int
	ch       Channel

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
		outbox:    NewOutbox(cfg.Store, cfg.Room),
		tl:        NewTimeline(cfg.MaxMessages),
		conn:      Reconnecting,
		wake:      make(chan struct{}, 1),
		flushKick: make(chan struct{}, 1),
		catchKick: make(chan struct{}, 1),
	}
}

// busMsg is what tabs tell each other about a room.
type busMsg struct {
	// T is batch (a poll answer), status, members, hello (a new tab asks
	// for status), outbox (the outbox changed; the leader sends it), sent
	// (the leader's send was acknowledged) or wake.
	T        string               `json:"t"`
	Resp     *shared.PollResponse `json:"resp,omitempty"`
	Conn     ConnState            `json:"conn,omitempty"`
	NeedJoin string               `json:"need_join,omitempty"`
	Members  []shared.Member      `json:"members,omitempty"`
	Msg      *shared.Message      `json:"msg,omitempty"`
}

// roomCache is what a room leaves in storage for the next start.
type roomCache struct {
	Epoch    string           `json:"epoch"`
	Next     uint64           `json:"next"`
	Messages []shared.Message `json:"messages"`
}

// Run syncs the room until ctx ends, then releases the poll lock (so another
// tab takes over) and returns once every goroutine it started has ended.
func (s *Syncer) Run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	s.restore()
	s.changed()

	ch := s.cfg.Bus.Open("parley:room:"+s.cfg.Room, s.onBus)
	s.mu.Lock()
	s.ch = ch
	s.mu.Unlock()
	defer ch.Close()
	s.post(busMsg{T: "hello"})

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.followLoop(ctx)
	}()

	if release, err := s.cfg.Locks.Acquire(ctx, "parley:poll:"+s.cfg.Room); err == nil {
		s.mu.Lock()
		s.leader = true
		s.mu.Unlock()
		s.changed()
		s.leadLoop(ctx)
		release()
	}
	cancel()
	wg.Wait()
}

// View returns the state with at most window entries (all when <= 0).
func (s *Syncer) View(window int) View {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := View{
		Room:         s.cfg.Room,
		Conn:         s.conn,
		Leader:       s.leader,
		Entries:      s.tl.Entries(window),
		MoreOnServer: s.tl.HasOlder(),
		Members:      append([]shared.Member(nil), s.members...),
		NeedJoin:     s.needJoin,
		Fatal:        s.fatal,
	}
	v.Hidden = s.tl.Len() - len(v.Entries)
	for _, it := range s.items {
		// A message whose acknowledgement was lost (reload mid-send) shows
		// up in the log with its client_msg_id: never show it twice.
		if !s.tl.HasClientMsgID(it.ID) {
			v.Outbox = append(v.Outbox, it)
		}
	}
	return v
}

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
	s.post(busMsg{T: "wake"})
}

// LoadOlder fetches one page of history older than the oldest message held
// and returns how many messages it added.
func (s *Syncer) LoadOlder(ctx context.Context, limit int) (int, error) {
	s.mu.Lock()
	oldest, epoch := s.tl.Oldest(), s.tl.Epoch
	s.mu.Unlock()
	if oldest <= 1 {
		return 0, nil
	}
	resp, err := s.cfg.API.Poll(ctx, "", s.cfg.Room, shared.PollRequest{Before: &oldest, Epoch: epoch, Limit: &limit})
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	n := s.tl.Prepend(resp)
	s.mu.Unlock()
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

func (s *Syncer) changed() {
	if s.cfg.OnChange != nil {
		s.cfg.OnChange()
	}
}

func (s *Syncer) post(m busMsg) {
	s.mu.Lock()
	ch := s.ch
	s.mu.Unlock()
	if ch == nil {
		return
	}
	b, err := json.Marshal(m)
	if err != nil {
		return
	}
	ch.Post(b)
}

func (s *Syncer) isLeader() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leader
}

// outboxChanged rereads the outbox, tells the other tabs, and has the
// leader (this tab or another) send what is pending.
func (s *Syncer) outboxChanged() {
	s.reloadOutbox()
	s.post(busMsg{T: "outbox"})
	notify(s.flushKick)
}

func (s *Syncer) restore() {
	var c roomCache
	items := s.outbox.Items()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items = items
	if getJSON(s.cfg.Store, keyRoomCache+s.cfg.Room, &c) && c.Epoch != "" {
		s.tl.Apply(shared.PollResponse{Room: s.cfg.Room, Epoch: c.Epoch, Messages: c.Messages, Next: c.Next})
	}
}

// persist writes the recent messages and the cursor for the next start.
// Only the leader writes, so tabs never overwrite a newer cache with an
// older one.
func (s *Syncer) persist() {
	s.mu.Lock()
	c := roomCache{Epoch: s.tl.Epoch, Next: s.tl.Next}
	for _, e := range s.tl.Entries(s.cfg.CacheMessages) {
		c.Messages = append(c.Messages, e.Message)
	}
	s.mu.Unlock()
	_ = setJSON(s.cfg.Store, keyRoomCache+s.cfg.Room, c)
}

// onBus handles another tab's message. The Bus calls it from its own
// goroutine, one message at a time.
func (s *Syncer) onBus(data []byte) {
	var m busMsg
	if json.Unmarshal(data, &m) != nil {
		return
	}
	switch m.T {
	case "batch":
		if m.Resp == nil {
			return
		}
		s.mu.Lock()
		res := s.tl.Apply(*m.Resp)
		s.mu.Unlock()
		if res.Behind {
			notify(s.catchKick)
		}
		s.reconcile(res.Added)
		s.changed()
	case "sent":
		if m.Msg != nil {
			s.mu.Lock()
			s.tl.Insert(*m.Msg)
			s.mu.Unlock()
		}
		s.reloadOutbox()
	case "status":
		s.mu.Lock()
		if !s.leader {
			s.conn, s.needJoin = m.Conn, m.NeedJoin
		}
		s.mu.Unlock()
		s.changed()
	case "members":
		s.mu.Lock()
		s.members = m.Members
		s.mu.Unlock()
		s.changed()
	case "hello":
		if s.isLeader() {
			s.mu.Lock()
			status := busMsg{T: "status", Conn: s.conn, NeedJoin: s.needJoin}
			members := busMsg{T: "members", Members: s.members}
			s.mu.Unlock()
			s.post(status)
			s.post(members)
		}
	case "outbox":
		s.reloadOutbox()
		notify(s.flushKick)
	case "wake":
		s.wakeLocal()
	}
}

func (s *Syncer) reloadOutbox() {
	items := s.outbox.Items()
	s.mu.Lock()
	s.items = items
	s.mu.Unlock()
	s.changed()
}

// reconcile drops outbox items whose message has arrived: the answer to
// their send was lost (a reload or a dropped connection mid-send) but the
// server stored them.
func (s *Syncer) reconcile(added []shared.Message) {
	s.mu.Lock()
	var done []string
	for _, it := range s.items {
		for _, m := range added {
			if m.ClientMsgID != "" && m.ClientMsgID == it.ID {
				done = append(done, it.ID)
			}
		}
	}
	s.mu.Unlock()
	if len(done) == 0 {
		return
	}
	for _, id := range done {
		s.outbox.Remove(id)
	}
	s.reloadOutbox()
}

// followLoop runs in every tab: it fetches what this tab has not seen (at
// start, and when a broadcast batch shows a hole) with short polls that
// never wait, and the member list once.
func (s *Syncer) followLoop(ctx context.Context) {
	if !s.isLeader() {
		s.catchUp(ctx)
		s.refreshMembers(ctx, false)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.catchKick:
		}
		if !s.isLeader() {
			s.catchUp(ctx)
		}
	}
}

func (s *Syncer) catchUp(ctx context.Context) {
	const limit = shared.MaxLimit
	for i := 0; i < 10 && ctx.Err() == nil; i++ {
		s.mu.Lock()
		req := s.pollRequest(0, limit)
		s.mu.Unlock()
		resp, err := s.cfg.API.Poll(ctx, "", s.cfg.Room, req)
		if err != nil {
			if api.IsNetwork(err) {
				s.setConn(Offline, false)
			}
			return
		}
		s.setConn(Connected, false)
		s.mu.Lock()
		res := s.tl.Apply(resp)
		s.mu.Unlock()
		s.reconcile(res.Added)
		s.changed()
		if len(resp.Messages) < limit || resp.Reset {
			return
		}
	}
}

// pollRequest builds the next poll from the cursor: the latest page when
// the room was never seen, else everything after Next. s.mu must be held.
func (s *Syncer) pollRequest(wait, limit int) shared.PollRequest {
	if s.tl.Epoch == "" {
		return shared.PollRequest{Limit: shared.Ptr(100)}
	}
	next := s.tl.Next
	return shared.PollRequest{After: &next, Epoch: s.tl.Epoch, Wait: &wait, Limit: &limit}
}

// setConn records the connection state; the leader tells the other tabs.
// A follower's own observations never override a leader's broadcast
// (authoritative=false only updates while no leader has spoken).
func (s *Syncer) setConn(c ConnState, authoritative bool) {
	s.mu.Lock()
	if s.conn == c {
		s.mu.Unlock()
		return
	}
	s.conn = c
	if c == Connected {
		s.netFails = 0
	}
	leader := s.leader
	needJoin := s.needJoin
	s.mu.Unlock()
	if leader && authoritative {
		s.post(busMsg{T: "status", Conn: c, NeedJoin: needJoin})
	}
	s.changed()
}

func (s *Syncer) setNeedJoin(code string) {
	s.mu.Lock()
	changed := s.needJoin != code
	s.needJoin = code
	conn := s.conn
	s.mu.Unlock()
	if changed {
		s.post(busMsg{T: "status", Conn: conn, NeedJoin: code})
		s.changed()
	}
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

// leadLoop is the room's one long poll in this browser. It applies each
// answer, persists and broadcasts it, and keeps the member list fresh; the
// outbox is sent alongside by flushLoop.
func (s *Syncer) leadLoop(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.flushLoop(ctx)
	}()
	defer wg.Wait()

	b := Backoff{Base: s.cfg.BackoffBase, Max: s.cfg.BackoffMax, Rand: s.cfg.Rand}
	needMembers := true
	notify(s.flushKick)
	for ctx.Err() == nil {
		sess, ok := LoadSession(s.cfg.Store)
		if !ok {
			s.setNeedJoin(shared.CodeUnauthorized)
			if !s.sleep(ctx, time.Minute) {
				return
			}
			continue
		}
		s.mu.Lock()
		req := s.pollRequest(s.cfg.PollWait, shared.MaxLimit)
		s.mu.Unlock()
		// A deadline beyond the server's wait catches a connection that
		// died without an error (a sleeping laptop, a silent proxy).
		pctx, pcancel := context.WithTimeout(ctx, time.Duration(s.cfg.PollWait+15)*time.Second)
		resp, err := s.cfg.API.Poll(pctx, sess.Token, s.cfg.Room, req)
		pcancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, context.DeadlineExceeded) {
				err = &api.NetError{Err: err}
			}
			if !s.pollFailed(ctx, err, sess, &b) {
				return
			}
			continue
		}
		s.mu.Lock()
		wasDown := s.conn != Connected
		s.mu.Unlock()
		b.Reset()
		s.setNeedJoin("")
		s.setConn(Connected, true)

		s.mu.Lock()
		res := s.tl.Apply(resp)
		s.mu.Unlock()
		// Messages this tab already had (its own sends, inserted from the
		// send's answer) still move the cursor: other tabs and the cache
		// need the batch too.
		if len(resp.Messages) > 0 || res.Reset || resp.Gap {
			r := resp
			s.post(busMsg{T: "batch", Resp: &r})
			s.persist()
		}
		s.reconcile(res.Added)
		s.changed()
		if needMembers || wasDown || hasPresence(res.Added) {
			needMembers = !s.refreshMembers(ctx, true)
		}
		if wasDown {
			notify(s.flushKick)
		}
	}
}

func hasPresence(msgs []shared.Message) bool {
	for _, m := range msgs {
		if m.Kind == shared.KindJoin || m.Kind == shared.KindLeave {
			return true
		}
	}
	return false
}

// pollFailed decides what a failed poll means and waits as needed; false
// means stop.
func (s *Syncer) pollFailed(ctx context.Context, err error, sess Session, b *Backoff) bool {
	switch code := api.Code(err); {
	case code == shared.CodeUnknownToken || code == shared.CodeUnauthorized:
		if _, rerr := s.renew(ctx, sess); rerr != nil {
			if c := api.Code(rerr); c == shared.CodeNameTaken || c == shared.CodeInvalidName || c == shared.CodeUnauthorized {
				s.setNeedJoin(c)
				return s.sleep(ctx, time.Minute)
			}
			return s.retryLater(ctx, rerr, b)
		}
		return true
	case code == shared.CodeInvalidRoom:
		s.mu.Lock()
		s.fatal = code
		s.mu.Unlock()
		s.changed()
		<-ctx.Done()
		return false
	case code == shared.CodeInvalidParam:
		// The cursor is not acceptable any more: start again from the latest.
		s.mu.Lock()
		s.tl.Epoch, s.tl.Next = "", 0
		s.mu.Unlock()
		return s.retryLater(ctx, err, b)
	default:
		return s.retryLater(ctx, err, b)
	}
}

func (s *Syncer) retryLater(ctx context.Context, err error, b *Backoff) bool {
	d := b.Next()
	if ra := api.RetryAfter(err); ra > d {
		d = ra
	}
	s.mu.Lock()
	if api.IsNetwork(err) {
		s.netFails++
	}
	fails, was := s.netFails, s.conn
	s.mu.Unlock()
	// One lost request is a blip worth "reconnecting"; a second in a row,
	// or the browser saying so, means the server is out of reach. Once
	// offline, stay offline until a request succeeds: a flickering
	// indicator says nothing.
	state := Reconnecting
	if fails >= 2 || !s.cfg.Online() || (was == Offline && api.IsNetwork(err)) {
		state = Offline
	}
	s.setConn(state, true)
	return s.sleep(ctx, d)
}

// renew replaces a token the server no longer knows by joining again with
// the same name. Tabs do it under one lock, and a tab that finds another
// tab's fresh token takes it instead of joining a second time (which would
// fail with name_taken).
func (s *Syncer) renew(ctx context.Context, failed Session) (Session, error) {
	release, err := s.cfg.Locks.Acquire(ctx, "parley:session")
	if err != nil {
		return Session{}, err
	}
	defer release()
	cur, ok := LoadSession(s.cfg.Store)
	if !ok {
		return Session{}, &shared.Error{Code: shared.CodeUnauthorized, Message: "no session"}
	}
	if cur.Token != failed.Token {
		return cur, nil
	}
	resp, err := s.cfg.API.Join(ctx, cur.Name)
	if err != nil {
		return Session{}, err
	}
	sess := Session{Name: resp.Name, Token: resp.Token}
	if err := SaveSession(s.cfg.Store, sess); err != nil {
		return Session{}, err
	}
	return sess, nil
}

func (s *Syncer) refreshMembers(ctx context.Context, broadcast bool) bool {
	mctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	resp, err := s.cfg.API.Members(mctx, s.cfg.Room)
	if err != nil {
		return false
	}
	s.mu.Lock()
	s.members = resp.Members
	s.mu.Unlock()
	if broadcast {
		s.post(busMsg{T: "members", Members: resp.Members})
	}
	s.changed()
	return true
}

// OutboxStored tells the Syncer that another tab changed the outbox in
// storage (the browser's storage event). It is a second path beside the
// bus message, so a lost message never strands a queued text.
func (s *Syncer) OutboxStored() {
	s.reloadOutbox()
	notify(s.flushKick)
}

// flushLoop sends the outbox in order while this tab leads. Besides the
// kicks, it looks at the outbox every few seconds: the outbox is the
// source of truth, the kicks only make it prompt.
func (s *Syncer) flushLoop(ctx context.Context) {
	b := Backoff{Base: s.cfg.BackoffBase, Max: s.cfg.BackoffMax, Rand: s.cfg.Rand}
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.flushKick:
		case <-tick.C:
			s.reloadOutbox()
		}
		if d, retry := s.flush(ctx, &b); retry {
			time.AfterFunc(d, func() { notify(s.flushKick) })
		}
	}
}

// flush sends pending items one at a time, oldest first, each with its
// client_msg_id. It stops at a temporary failure and reports when to retry;
// an item the server refuses is marked failed and the next one goes.
func (s *Syncer) flush(ctx context.Context, b *Backoff) (time.Duration, bool) {
	for ctx.Err() == nil {
		var it *Item
		for _, x := range s.outbox.Items() {
			if x.State == ItemPending {
				it = &x
				break
			}
		}
		if it == nil {
			b.Reset()
			return 0, false
		}
		s.mu.Lock()
		have := s.tl.HasClientMsgID(it.ID)
		s.mu.Unlock()
		if have {
			s.outbox.Remove(it.ID)
			s.outboxChanged()
			continue
		}
		sess, ok := LoadSession(s.cfg.Store)
		if !ok {
			return 0, false
		}
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		msg, err := s.cfg.API.Send(sctx, sess.Token, s.cfg.Room, shared.SendRequest{Text: it.Text, ClientMsgID: it.ID})
		cancel()
		if ctx.Err() != nil {
			return 0, false
		}
		switch code := api.Code(err); {
		case err == nil:
			b.Reset()
			s.outbox.Remove(it.ID)
			s.mu.Lock()
			s.tl.Insert(msg)
			s.mu.Unlock()
			s.post(busMsg{T: "sent", Msg: &msg})
			s.reloadOutbox()
		case code == shared.CodeUnknownToken || code == shared.CodeUnauthorized:
			if _, rerr := s.renew(ctx, sess); rerr != nil {
				// The poll loop meets the same error and asks the user.
				return b.Next(), true
			}
		case api.Temporary(err) || errors.Is(err, context.DeadlineExceeded):
			if api.IsNetwork(err) {
				// The poll notices too and kicks the outbox once it is back.
				notify(s.wake)
			}
			d := b.Next()
			if ra := api.RetryAfter(err); ra > d {
				d = ra
			}
			return d, true
		default:
			s.outbox.SetState(it.ID, ItemFailed, code)
			s.outboxChanged()
		}
	}
	return 0, false
}
