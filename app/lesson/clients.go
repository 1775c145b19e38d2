package lesson

import (
	"context"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/parley-chat/parley/app/api"
	"github.com/parley-chat/parley/app/chat"
	"github.com/parley-chat/parley/shared"
)

// Apply runs a change of the Board where the Board lives: on the page's UI
// goroutine (go-app's Dispatch), in order.
type Apply func(func(b *Board))

// Ready marks a client as set up: its cursor is at the room's head, so
// every message sent from now on reaches it.
func (b *Board) Ready(mode Mode) { b.ready[mode] = true }

// IsReady reports whether the client of mode is set up.
func (b *Board) IsReady(m Mode) bool { return b.ready[m] }

// AllReady reports whether every client is set up: sending before would
// let a message slip in ahead of a cursor.
func (b *Board) AllReady() bool {
	for _, m := range Modes {
		if !b.ready[m] {
			return false
		}
	}
	return true
}

// Clients runs the page's three clients against the server at base until
// ctx ends; each request's body size is counted through api.Client.OnBody.
type Clients struct {
	Base string
	// HTTP is the client outside the browser (see api.Client.HTTP); give
	// it a cookie jar: the textbook endpoints may tie a cursor to one.
	HTTP *http.Client
	// Name is the textbook client's name (the Board's).
	Name string
	// Room is the room all three clients read and the page writes (lobby
	// when ""): the page makes one of its own, so nothing it does shows up
	// in anybody's chat.
	Room string
	// Token, when set, is the page's own session: its messages are sent
	// through the API with it. Without one they go through the textbook's
	// /send_msg/ as Name.
	Token string
	// Interval is the short polling client's interval, read before each
	// request so the page can change it.
	Interval func() time.Duration
	// LongWait is the long poll's wait in seconds, as the app's own loop
	// uses it (shared.DefaultWaitSeconds when zero).
	LongWait int
	Apply    Apply
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

func (c *Clients) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// client returns an API client whose answers' sizes land in *n.
func (c *Clients) client(n *int) *api.Client {
	return &api.Client{Base: c.Base, HTTP: c.HTTP, OnBody: func(b int) { *n = b }}
}

// RunShort polls with wait=0 every Interval, measured from one request's
// start to the next (at once when a request took longer).
func (c *Clients) RunShort(ctx context.Context) { c.runPolls(ctx, Short) }

// RunLong polls the way the app's Syncer does: each request waits on the
// server until there is something, and the next starts at once.
func (c *Clients) RunLong(ctx context.Context) { c.runPolls(ctx, Long) }

func (c *Clients) runPolls(ctx context.Context, mode Mode) {
	var size int
	cl := c.client(&size)
	room := c.room()
	var head shared.PollResponse
	// Setting up: where the room ends now. Not counted: it is not polling.
	for {
		var err error
		if head, err = cl.Poll(ctx, "", room, shared.PollRequest{Limit: shared.Ptr(1)}); err == nil {
			break
		}
		if !Sleep(ctx, time.Second) {
			return
		}
	}
	c.Apply(func(b *Board) { b.Ready(mode) })
	next, epoch := head.Next, head.Epoch
	wait := 0
	if mode == Long {
		wait = c.LongWait
		if wait == 0 {
			wait = shared.DefaultWaitSeconds
		}
	}
	retry := newBackoff()
	for k := 0; ; k++ {
		start := c.now()
		c.Apply(func(b *Board) { b.Started(mode, start) })
		// A deadline beyond the server's wait catches a connection that
		// died silently, as the Syncer's does.
		pctx, cancel := context.WithTimeout(ctx, time.Duration(wait+15)*time.Second)
		size = 0
		resp, err := cl.Poll(pctx, "", room, shared.PollRequest{After: shared.Ptr(next), Epoch: epoch, Wait: shared.Ptr(wait)})
		cancel()
		if ctx.Err() != nil {
			return // left: the request was aborted, nothing to count
		}
		end := c.now()
		var msgs []Incoming
		if err == nil {
			if !resp.Reset {
				for _, m := range resp.Messages {
					if m.Kind == shared.KindText {
						msgs = append(msgs, Incoming{Author: m.Author, Text: m.Text})
					}
				}
			}
			next, epoch = resp.Next, resp.Epoch
		}
		bar, n, failed := k, size, err != nil
		c.Apply(func(b *Board) { b.Answered(mode, bar, end, n, msgs, failed) })
		pause := time.Duration(0)
		if err != nil {
			pause = retry.after(err)
		} else {
			retry.Reset()
		}
		if mode == Short {
			if p := c.Interval() - end.Sub(start); p > pause {
				pause = p
			}
		}
		if pause > 0 && !Sleep(ctx, pause) {
			return
		}
	}
}

// RunTextbook registers its name's cursor (/home/), then asks /get_msg/
// again and again: one message per answer, or none after 10 s.
func (c *Clients) RunTextbook(ctx context.Context) {
	var size int
	cl := c.client(&size)
	for cl.TextbookHome(ctx, c.Room, c.Name) != nil {
		if !Sleep(ctx, time.Second) {
			return
		}
	}
	c.Apply(func(b *Board) { b.Ready(Textbook) })
	retry := newBackoff()
	for k := 0; ; k++ {
		start := c.now()
		c.Apply(func(b *Board) { b.Started(Textbook, start) })
		pctx, cancel := context.WithTimeout(ctx, shared.LegacyWait+15*time.Second)
		size = 0
		resp, err := cl.TextbookGet(pctx, c.Room, c.Name)
		cancel()
		if ctx.Err() != nil {
			return
		}
		end := c.now()
		var msgs []Incoming
		if err == nil && resp.Status {
			msgs = []Incoming{{Text: resp.Msg}}
		}
		bar, n, failed := k, size, err != nil
		c.Apply(func(b *Board) { b.Answered(Textbook, bar, end, n, msgs, failed) })
		if err != nil {
			if !Sleep(ctx, retry.after(err)) {
				return
			}
		} else {
			retry.Reset()
		}
	}
}

// Post sends the Board's message id (from Board.Send), through the API
// with Token or else through the textbook's /send_msg/ as Name, and records
// its acknowledgement.
func (c *Clients) Post(ctx context.Context, id int, text string) error {
	var n int
	cl := c.client(&n)
	var err error
	if c.Token != "" {
		_, err = cl.Send(ctx, c.Token, c.room(), shared.SendRequest{Text: text, ClientMsgID: api.Nonce()})
	} else {
		err = cl.TextbookSend(ctx, c.Room, c.Name, text)
	}
	if err != nil {
		return err
	}
	at := c.now()
	c.Apply(func(b *Board) { b.Acked(id, at) })
	return nil
}

func (c *Clients) room() string {
	if c.Room == "" {
		return shared.LegacyRoom
	}
	return c.Room
}

// backoff spaces the retries after failures: the server's Retry-After when
// it gave one, else the app's own backoff (1 s doubling up to 8 s).
type backoff struct{ chat.Backoff }

func newBackoff() *backoff {
	return &backoff{chat.Backoff{Base: time.Second, Max: 8 * time.Second, Rand: rand.Float64}}
}

func (b *backoff) after(err error) time.Duration {
	d := b.Next()
	if ra := api.RetryAfter(err); ra > 0 {
		return ra
	}
	return d
}

// Sleep waits d, or returns false when ctx ends first.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
