package chat

import (
	"sort"

	"github.com/parley-chat/parley/shared"
)

// Entry is one line of a room's log as the UI shows it.
type Entry struct {
	shared.Message
	// GapBefore marks that messages before this one were missed (the server
	// no longer retained them when the client asked).
	GapBefore bool
}

// Timeline is the client's copy of one room's log: messages ordered and
// keyed by seq, so applying the same batch twice (a poll and a tab's
// broadcast, a cached page and a reload) never shows a message twice. It is
// not safe for concurrent use; the Syncer guards it.
type Timeline struct {
	// Epoch is the room's epoch the messages belong to; "" before the first
	// batch.
	Epoch string
	// Next is the cursor for the next poll (the seq of the newest message
	// that was delivered in order). Zero means "ask for the latest".
	Next uint64

	entries []Entry // sorted by Seq, unique
	max     int
	// rev changes whenever entries do.
	rev uint64
	// gapPending carries a gap reported with an empty batch to the next
	// message that arrives.
	gapPending bool
}

// NewTimeline returns an empty timeline that keeps at most max messages in
// memory (the oldest are dropped first; "load older" fetches them again).
func NewTimeline(max int) *Timeline {
	if max <= 0 {
		max = 5000
	}
	return &Timeline{max: max}
}

// Rev is a number that changes whenever the entries change: equal revs
// mean equal entries.
func (t *Timeline) Rev() uint64 { return t.rev }

// Len is the number of messages held.
func (t *Timeline) Len() int { return len(t.entries) }

// Entries returns the last n entries (all when n <= 0), oldest first. The
// slice is a copy the caller may keep.
func (t *Timeline) Entries(n int) []Entry {
	start := 0
	if n > 0 && len(t.entries) > n {
		start = len(t.entries) - n
	}
	return append([]Entry(nil), t.entries[start:]...)
}

// Oldest is the seq of the oldest message held, 0 when empty.
func (t *Timeline) Oldest() uint64 {
	if len(t.entries) == 0 {
		return 0
	}
	return t.entries[0].Seq
}

// Newest is the seq of the newest message held, 0 when empty.
func (t *Timeline) Newest() uint64 {
	if len(t.entries) == 0 {
		return 0
	}
	return t.entries[len(t.entries)-1].Seq
}

// HasOlder reports whether the server has messages older than those held.
func (t *Timeline) HasOlder() bool { return len(t.entries) > 0 && t.entries[0].Seq > 1 }

// HasClientMsgID reports whether a message with this client_msg_id is held.
func (t *Timeline) HasClientMsgID(id string) bool {
	if id == "" {
		return false
	}
	for i := len(t.entries) - 1; i >= 0; i-- {
		if t.entries[i].ClientMsgID == id {
			return true
		}
	}
	return false
}

// Result says what applying a poll answer did.
type Result struct {
	// Added are the messages that were new to the timeline, oldest first.
	Added []shared.Message
	// Reset is true when the timeline was dropped and rebuilt (new epoch).
	Reset bool
	// Behind is true when the batch started after a hole: messages between
	// Next and the batch were never seen, so the caller should fetch them
	// (seen by a tab that receives another tab's poll results).
	Behind bool
}

// Apply merges a poll answer. A reset, or an epoch other than the one held,
// replaces everything; otherwise messages are merged by seq and Next only
// moves forward.
func (t *Timeline) Apply(resp shared.PollResponse) Result {
	var res Result
	if resp.Reset || (t.Epoch != "" && resp.Epoch != "" && resp.Epoch != t.Epoch) {
		t.rev++
		t.entries = nil
		t.Next = 0
		t.gapPending = false
		res.Reset = true
	}
	if resp.Epoch != "" {
		t.Epoch = resp.Epoch
	}
	if !res.Reset && t.Next > 0 && len(resp.Messages) > 0 && resp.Messages[0].Seq > t.Next+1 && !resp.Gap {
		res.Behind = true
	}
	gap := resp.Gap && !res.Reset
	for i, m := range resp.Messages {
		e := Entry{Message: m}
		if i == 0 && (gap || t.gapPending) {
			e.GapBefore = true
			t.gapPending = false
		}
		if t.insert(e) {
			res.Added = append(res.Added, m)
		}
	}
	if gap && len(resp.Messages) == 0 {
		t.gapPending = true
	}
	if res.Behind {
		// Keep the cursor where it was: the hole must be fetched first, and
		// a poll from Next returns it together with what follows.
	} else if resp.Next > t.Next {
		t.Next = resp.Next
	}
	t.trim()
	return res
}

// Insert adds single messages that did not come from a poll (the answer
// to a send), without moving the cursor: the poll brings them again and
// they merge by seq.
func (t *Timeline) Insert(msgs ...shared.Message) []shared.Message {
	var added []shared.Message
	for _, m := range msgs {
		if t.insert(Entry{Message: m}) {
			added = append(added, m)
		}
	}
	t.trim()
	return added
}

// Prepend merges an older page (a before= answer). It never changes the
// cursor and is ignored when its epoch is not the one held.
func (t *Timeline) Prepend(resp shared.PollResponse) int {
	if t.Epoch != "" && resp.Epoch != "" && resp.Epoch != t.Epoch {
		return 0
	}
	n := 0
	for _, m := range resp.Messages {
		if t.insert(Entry{Message: m}) {
			n++
		}
	}
	return n
}

func (t *Timeline) insert(e Entry) bool {
	n := len(t.entries)
	// The common case: a newer message goes at the end.
	if n == 0 || t.entries[n-1].Seq < e.Seq {
		t.rev++
		t.entries = append(t.entries, e)
		return true
	}
	i := sort.Search(n, func(i int) bool { return t.entries[i].Seq >= e.Seq })
	if i < n && t.entries[i].Seq == e.Seq {
		if e.GapBefore && !t.entries[i].GapBefore {
			t.rev++
			t.entries[i].GapBefore = true
		}
		return false
	}
	t.rev++
	t.entries = append(t.entries, Entry{})
	copy(t.entries[i+1:], t.entries[i:])
	t.entries[i] = e
	return true
}

func (t *Timeline) trim() {
	if over := len(t.entries) - t.max; over > 0 {
		t.rev++
		t.entries = append([]Entry(nil), t.entries[over:]...)
	}
}
