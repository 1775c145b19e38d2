// Package lesson is the logic of the /learn page: three clients (short
// polling, long polling and the textbook's /get_msg/) receiving the same
// messages, and the counters and timeline that compare them. It is plain Go,
// tested on the host; the page in app/ui only draws a Board.
//
// The room. The page makes a room of its own (a generated name) and a
// session of its own, and sends its messages through the API with that
// session; the short and long polling clients read the room without the
// session (a poll with it would make the page "present" and log a join),
// and the textbook client reads it through /get_msg/'s room parameter,
// Parley's addition to the textbook's endpoints. So nothing the page does
// shows up in anybody's chat. Anyone who opens the room by its name is
// counted apart ("other"), never as the page's.
package lesson

import (
	"time"
)

// Mode is one way of receiving messages.
type Mode string

// The three clients of the page.
const (
	Short    Mode = "short"
	Long     Mode = "long"
	Textbook Mode = "textbook"
)

// Modes lists the clients in the order the page shows them.
var Modes = []Mode{Short, Long, Textbook}

// Window is how much of the past the timeline shows; older requests and
// arrivals are forgotten.
const Window = 30 * time.Second

// Bar is one request: from its start to its answer (End zero while it is
// in flight).
type Bar struct {
	Start, End time.Time
	// Got is how many of the page's messages the answer carried.
	Got    int
	Failed bool
}

// Dot is one of the page's messages arriving at a client.
type Dot struct{ At time.Time }

// Column is what one client has done, as the page shows it.
type Column struct {
	Mode Mode
	// Requests counts the requests answered (or failed); Empty the answers
	// that carried no message at all.
	Requests, Empty int
	// Received counts the page's messages received, each once; Duplicates
	// a page's message received again; Other the messages of anybody else.
	Received, Duplicates, Other int
	Errors                      int
	Bytes                       int64
	// Delays are measured from the send's acknowledgement to the client
	// having the message; one that arrived before the acknowledgement
	// counts as zero.
	DelaySum, DelayMax time.Duration
	Delayed            int

	Bars []Bar
	Dots []Dot

	got map[int]time.Time // sent message id → when this client got it
	// shift is how many bars Prune dropped: a request's number from
	// Started stays valid.
	shift int
}

// DelayAvg is the mean delay over the messages with a known delay.
func (c *Column) DelayAvg() time.Duration {
	if c.Delayed == 0 {
		return 0
	}
	return c.DelaySum / time.Duration(c.Delayed)
}

// Delays lists the delay of every acknowledged message c received, in
// the order they were sent, for quantiles.
func (b *Board) Delays(m Mode) []time.Duration {
	c := b.Columns[m]
	var out []time.Duration
	for _, s := range b.Sent {
		if got, ok := c.got[s.ID]; ok && s.Acked {
			out = append(out, max(0, got.Sub(s.AckAt)))
		}
	}
	return out
}

// Sent is one message the page sent.
type Sent struct {
	ID    int
	Text  string
	Acked bool
	AckAt time.Time
}

// Board is the page's state: what was sent and what each client received.
// It is not safe for concurrent use: the page changes it on its UI
// goroutine only.
type Board struct {
	// Name is the page's author name on the textbook endpoints and its
	// textbook client's name.
	Name    string
	Sent    []Sent
	Columns map[Mode]*Column
	ready   map[Mode]bool
}

// NewBoard returns an empty board for the author name.
func NewBoard(name string) *Board {
	b := &Board{Name: name, Columns: map[Mode]*Column{}, ready: map[Mode]bool{}}
	for _, m := range Modes {
		b.Columns[m] = &Column{Mode: m, got: map[int]time.Time{}}
	}
	return b
}

// Send records a message about to be sent and returns its id.
func (b *Board) Send(text string) int {
	id := len(b.Sent) + 1
	b.Sent = append(b.Sent, Sent{ID: id, Text: text})
	return id
}

// NextID is the id the next Send returns.
func (b *Board) NextID() int { return len(b.Sent) + 1 }

// Acked records the send's acknowledgement and the delay of every client
// that already had the message.
func (b *Board) Acked(id int, at time.Time) {
	s := b.sent(id)
	if s == nil || s.Acked {
		return
	}
	s.Acked, s.AckAt = true, at
	for _, c := range b.Columns {
		if got, ok := c.got[id]; ok {
			c.delay(got.Sub(at))
		}
	}
}

func (b *Board) sent(id int) *Sent {
	if id < 1 || id > len(b.Sent) {
		return nil
	}
	return &b.Sent[id-1]
}

// Incoming is one message as a client received it. Author is "" when the
// client cannot know it (the textbook's answers carry the text only).
type Incoming struct {
	Author, Text string
}

// Started records the start of a request of mode; the index it returns
// goes to Answered.
func (b *Board) Started(mode Mode, at time.Time) int {
	c := b.Columns[mode]
	c.Bars = append(c.Bars, Bar{Start: at})
	return c.shift + len(c.Bars) - 1
}

// Answered records the answer to the request bar of mode (from Started):
// its size, the messages it carried, or its failure.
func (b *Board) Answered(mode Mode, bar int, at time.Time, bytes int, msgs []Incoming, failed bool) {
	c := b.Columns[mode]
	c.Requests++
	c.Bytes += int64(bytes)
	got := 0
	switch {
	case failed:
		c.Errors++
	case len(msgs) == 0:
		c.Empty++
	}
	for _, m := range msgs {
		id := b.match(c, m)
		switch {
		case id > 0:
			c.Received++
			got++
			c.got[id] = at
			c.Dots = append(c.Dots, Dot{At: at})
			if s := b.sent(id); s.Acked {
				c.delay(at.Sub(s.AckAt))
			}
		case id < 0:
			c.Duplicates++
		default:
			c.Other++
		}
	}
	if bar -= c.shift; bar >= 0 && bar < len(c.Bars) {
		c.Bars[bar].End, c.Bars[bar].Got, c.Bars[bar].Failed = at, got, failed
	}
}

// match finds which of the page's messages m is: the first one with its
// text that c has not received yet (the id), a repeat of one it has
// (minus the id), or none of the page's (0).
func (b *Board) match(c *Column, m Incoming) int {
	if m.Author != "" && m.Author != b.Name {
		return 0
	}
	dup := 0
	for _, s := range b.Sent {
		if s.Text != m.Text {
			continue
		}
		if _, seen := c.got[s.ID]; !seen {
			return s.ID
		}
		dup = -s.ID
	}
	return dup
}

func (c *Column) delay(d time.Duration) {
	if d < 0 {
		d = 0
	}
	c.DelaySum += d
	c.Delayed++
	if d > c.DelayMax {
		c.DelayMax = d
	}
}

// Prune forgets the requests that ended, and the arrivals that happened,
// before the timeline's window: the page runs for as long as it is open.
// Requests in flight stay, and so do the ones after them.
func (b *Board) Prune(now time.Time) {
	from := now.Add(-Window)
	for _, c := range b.Columns {
		n := 0
		for n < len(c.Bars) && !c.Bars[n].End.IsZero() && c.Bars[n].End.Before(from) {
			n++
		}
		c.Bars = append(c.Bars[:0:0], c.Bars[n:]...)
		c.shift += n
		d := 0
		for d < len(c.Dots) && c.Dots[d].At.Before(from) {
			d++
		}
		c.Dots = append(c.Dots[:0:0], c.Dots[d:]...)
	}
}
