package chat

import (
	"sync"

	"github.com/parley-chat/parley/shared"
)

// roomState is what a tab knows about one room: the timeline, the
// connection, the members and why the room cannot go on. The leader and
// follower sides both write it, only through these methods, each of which
// takes the one lock for a short, non-blocking step.
type roomState struct {
	mu       sync.Mutex
	room     string
	tl       *Timeline
	conn     ConnState
	leader   bool
	members  []shared.Member
	needJoin string
	fatal    string
	netFails int

	// shown is the Entries of the last View, for shownRev and shownWindow.
	shown       []Entry
	shownRev    uint64
	shownWindow int
}

func newRoomState(room string, maxMessages int) *roomState {
	return &roomState{room: room, tl: NewTimeline(maxMessages), conn: Reconnecting}
}

// roomCache is what a room leaves in storage for the next start.
type roomCache struct {
	Epoch    string           `json:"epoch"`
	Next     uint64           `json:"next"`
	Messages []shared.Message `json:"messages"`
}

func (r *roomState) apply(resp shared.PollResponse) Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tl.Apply(resp)
}

func (r *roomState) insert(m shared.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tl.Insert(m)
}

func (r *roomState) prepend(resp shared.PollResponse) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tl.Prepend(resp)
}

func (r *roomState) oldest() (uint64, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tl.Oldest(), r.tl.Epoch
}

func (r *roomState) hasClientMsgID(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tl.HasClientMsgID(id)
}

// pollRequest builds the next poll from the cursor: the latest page when
// the room was never seen, else everything after Next.
func (r *roomState) pollRequest(wait, limit int) shared.PollRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tl.Epoch == "" {
		return shared.PollRequest{Limit: shared.Ptr(100)}
	}
	next := r.tl.Next
	return shared.PollRequest{After: &next, Epoch: r.tl.Epoch, Wait: &wait, Limit: &limit}
}

// forgetCursor makes the next poll ask for the latest page again.
func (r *roomState) forgetCursor() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tl.Epoch, r.tl.Next = "", 0
}

func (r *roomState) cache(n int) roomCache {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := roomCache{Epoch: r.tl.Epoch, Next: r.tl.Next}
	for _, e := range r.tl.Entries(n) {
		c.Messages = append(c.Messages, e.Message)
	}
	return c
}

func (r *roomState) restore(c roomCache) {
	if c.Epoch == "" {
		return
	}
	r.apply(shared.PollResponse{Room: r.room, Epoch: c.Epoch, Messages: c.Messages, Next: c.Next})
}

func (r *roomState) isLeader() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.leader
}

func (r *roomState) setLeader() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.leader = true
}

func (r *roomState) connState() ConnState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conn
}

// setConn records c and reports whether it changed.
func (r *roomState) setConn(c ConnState) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn == c {
		return false
	}
	r.conn = c
	if c == Connected {
		r.netFails = 0
	}
	return true
}

// netFailed counts a network failure in a row and returns the count.
func (r *roomState) netFailed() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.netFails++
	return r.netFails
}

func (r *roomState) failures() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.netFails
}

// setNeedJoin records code and reports whether it changed.
func (r *roomState) setNeedJoin(code string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := r.needJoin != code
	r.needJoin = code
	return changed
}

// follow takes the leader's status, unless this tab leads.
func (r *roomState) follow(st statusEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.leader {
		r.conn, r.needJoin = st.Conn, st.NeedJoin
	}
}

func (r *roomState) status() statusEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return statusEvent{Conn: r.conn, NeedJoin: r.needJoin}
}

func (r *roomState) setMembers(m []shared.Member) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.members = m
}

func (r *roomState) memberList() []shared.Member {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]shared.Member(nil), r.members...)
}

func (r *roomState) setFatal(code string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fatal = code
}

// view is the state with at most window entries (all when <= 0) and the
// outbox items whose message has not arrived yet.
func (r *roomState) view(window int, outbox []Item) View {
	r.mu.Lock()
	defer r.mu.Unlock()
	// The same entries as last time are the same slice: the UI compares
	// its properties with reflect.DeepEqual, which stops at once on two
	// slices that share their array, instead of walking every message.
	if r.shownRev != r.tl.Rev() || r.shownWindow != window || r.shown == nil {
		r.shown, r.shownRev, r.shownWindow = r.tl.Entries(window), r.tl.Rev(), window
	}
	v := View{
		Room:         r.room,
		Conn:         r.conn,
		Leader:       r.leader,
		Entries:      r.shown,
		MoreOnServer: r.tl.HasOlder(),
		Members:      append([]shared.Member(nil), r.members...),
		NeedJoin:     r.needJoin,
		Fatal:        r.fatal,
	}
	v.Hidden = r.tl.Len() - len(v.Entries)
	for _, it := range outbox {
		// A message whose acknowledgement was lost (reload mid-send) shows
		// up in the log with its client_msg_id: never show it twice.
		if !r.tl.HasClientMsgID(it.ID) {
			v.Outbox = append(v.Outbox, it)
		}
	}
	return v
}
