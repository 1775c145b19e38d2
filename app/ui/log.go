package ui

import (
	"fmt"
	"strconv"
	"time"

	"github.com/maxence-charriere/go-app/v10/pkg/app"
	"github.com/parley-chat/parley/app/chat"
	"github.com/parley-chat/parley/app/i18n"
	"github.com/parley-chat/parley/shared"
)

const (
	// baseWindow is how many messages the Syncer hands over while the user
	// reads the newest ones: a burst of a thousand or a long history costs
	// no more DOM than this.
	baseWindow = 150
	// maxWindow bounds the window when the user scrolls back or loads
	// older messages.
	maxWindow = 1500
	olderPage = 50
	// anchorStep and anchorKeep place the first message shown while the
	// reader is at the newest: go-app diffs children by position, so a
	// window that slid by one message at a time would rewrite every line
	// on every new message. The first line moves by anchorStep messages at
	// once instead; between moves, new messages only add lines at the end.
	anchorStep = 50
	anchorKeep = 100

	idLog = "log"
)

// messageLog is the room's message list: the messages in its window, the
// user's own messages still on their way, "load older", and the "new
// messages" pill when the reader has scrolled up. Its state is where the
// reader is: pinned to the newest or reading back, and how much is shown.
type messageLog struct {
	app.Compo

	Ctl          *roomCtl
	Str          *i18n.Strings
	Room         string
	Self         string
	Conn         chat.ConnState
	Entries      []chat.Entry
	Outbox       []chat.Item
	Hidden       int
	MoreOnServer bool

	pinned       bool
	unseen       int
	newest       uint64
	outboxLen    int
	window       int
	loadingOlder bool
	// keep restores the scroll position after older messages came in.
	keep func()
}

// OnInit starts at the newest messages.
func (c *messageLog) OnInit() {
	c.pinned, c.window = true, baseWindow
}

// OnMount shows the newest messages.
func (c *messageLog) OnMount(ctx app.Context) {
	c.newest = newestSeq(c.Entries)
	ctx.Defer(func(app.Context) { scrollToBottom(idLog) })
}

// OnUpdate follows new properties: count what arrived while the reader is
// scrolled up (and grow the window, so what they read stays in place), or
// stay at the bottom.
func (c *messageLog) OnUpdate(ctx app.Context) {
	newest := newestSeq(c.Entries)
	if len(c.Outbox) > c.outboxLen {
		// The user just sent: show it.
		c.pin()
	}
	c.outboxLen = len(c.Outbox)
	if newest > c.newest && c.newest != 0 && !c.pinned {
		for _, e := range c.Entries {
			if e.Seq > c.newest {
				c.unseen++
			}
		}
		if c.window < maxWindow && c.Ctl != nil {
			c.window = min(maxWindow, c.window+int(newest-c.newest))
			c.Ctl.SetWindow(c.window)
		}
	}
	c.newest = newest
	if keep := c.keep; keep != nil {
		c.keep = nil
		ctx.Defer(func(app.Context) { keep() })
	} else if c.pinned {
		ctx.Defer(func(app.Context) { scrollToBottom(idLog) })
	}
}

func newestSeq(es []chat.Entry) uint64 {
	if n := len(es); n > 0 {
		return es[n-1].Seq
	}
	return 0
}

// shown is the part of Entries to render: from an anchor that moves in
// steps while pinned, everything while reading back.
func (c *messageLog) shown() []chat.Entry {
	es := c.Entries
	if !c.pinned || c.window != baseWindow || len(es) <= anchorKeep {
		return es
	}
	newest := es[len(es)-1].Seq
	anchor := uint64(0)
	if newest > anchorKeep {
		anchor = (newest - anchorKeep) / anchorStep * anchorStep
	}
	i := len(es)
	for i > 0 && es[i-1].Seq > anchor {
		i--
	}
	return es[i:]
}

// Render draws the log.
func (c *messageLog) Render() app.UI {
	s := c.Str
	es := c.shown()
	return app.Div().Class("timeline").Body(
		app.Div().
			ID(idLog).
			Class("log").
			Role("log").
			Aria("live", "polite").
			Aria("label", fmt.Sprintf(s.LogLabel, c.Room)).
			DataSet("testid", "log").
			TabIndex(0).
			OnScroll(c.onScroll).
			Body(
				app.Button().Type("button").Class("older").DataSet("testid", "load-older").
					Hidden(c.Hidden == 0 && !c.MoreOnServer).
					Disabled(c.loadingOlder).
					Text(pick(c.loadingOlder, s.Loading, s.LoadOlder)).OnClick(c.loadOlder),
				app.P().Class("empty").Hidden(len(c.Entries) > 0 || len(c.Outbox) > 0).Text(s.Empty),
				app.Ol().Class("messages").Body(
					app.Range(es).Slice(func(i int) app.UI {
						e := es[i]
						return &msgLine{Str: s, Entry: e, Own: e.Author == c.Self && c.Self != ""}
					}),
					app.Range(c.Outbox).Slice(func(i int) app.UI {
						return &pendingLine{Ctl: c.Ctl, Str: s, Item: c.Outbox[i], Self: c.Self, Queued: c.Conn != chat.Connected}
					}),
				),
			),
		app.If(c.unseen > 0, func() app.UI {
			return app.Button().Type("button").Class("pill").DataSet("testid", "new-messages").
				Text(s.NewMessages).OnClick(c.jumpToNewest)
		}),
	)
}

func (c *messageLog) onScroll(ctx app.Context, e app.Event) {
	el := ctx.JSSrc()
	atBottom := el.Get("scrollTop").Float()+el.Get("clientHeight").Float() >= el.Get("scrollHeight").Float()-48
	if atBottom == c.pinned {
		ctx.PreventUpdate()
		return
	}
	c.pinned = atBottom
	if atBottom {
		c.unseen = 0
		if c.window > baseWindow {
			c.setWindow(baseWindow)
		}
	}
}

func (c *messageLog) pin() {
	c.pinned, c.unseen = true, 0
	if c.window != baseWindow {
		c.setWindow(baseWindow)
	}
}

func (c *messageLog) setWindow(n int) {
	c.window = n
	if c.Ctl != nil {
		c.Ctl.SetWindow(n)
	}
}

func (c *messageLog) jumpToNewest(ctx app.Context, e app.Event) {
	c.pin()
	ctx.Defer(func(app.Context) { scrollToBottom(idLog) })
}

func (c *messageLog) loadOlder(ctx app.Context, e app.Event) {
	if c.Ctl == nil || c.loadingOlder {
		return
	}
	c.pinned = false
	c.keep = keepScrollPosition(idLog)
	if c.Hidden > 0 {
		c.setWindow(min(maxWindow, c.window+olderPage))
		return
	}
	ctl := c.Ctl
	c.loadingOlder = true
	ctx.Async(func() {
		n, err := ctl.LoadOlder(olderPage)
		ctx.Dispatch(func(ctx app.Context) {
			c.loadingOlder = false
			if err != nil || c.Ctl != ctl {
				c.keep = nil
				return
			}
			c.setWindow(min(maxWindow, c.window+n))
		})
	})
}

// msgLine is one message of the log. As a component of its own, a line
// whose message did not change is not rendered again.
type msgLine struct {
	app.Compo

	Str   *i18n.Strings
	Entry chat.Entry
	Own   bool
}

// Render draws the line. User text only ever becomes DOM text nodes.
func (c *msgLine) Render() app.UI {
	s := c.Str
	e := c.Entry
	var li app.HTMLLi
	switch e.Kind {
	case shared.KindJoin, shared.KindLeave:
		f := s.Joined
		if e.Kind == shared.KindLeave {
			f = s.Left
		}
		li = app.Li().Class("msg system").Body(
			gapMark(s, e.GapBefore),
			app.Span().Text(fmt.Sprintf(f, e.Author)),
			timeOf(e.SentAt),
		)
	default:
		li = app.Li().Class(pick(c.Own, "msg own", "msg")).Body(
			gapMark(s, e.GapBefore),
			app.Div().Class("meta").Body(
				app.Span().Class("author").Text(e.Author),
				timeOf(e.SentAt),
				app.If(c.Own, func() app.UI {
					return app.Span().Class("status sent").Aria("label", s.Sent).Title(s.Sent).Text("✓")
				}),
			),
			app.P().Class("text").Text(e.Text),
		)
		if c.Own && e.ClientMsgID != "" {
			li = li.DataSet("client-msg-id", e.ClientMsgID).DataSet("state", "sent")
		}
	}
	return li.DataSet("seq", strconv.FormatUint(e.Seq, 10)).DataSet("kind", string(e.Kind))
}

// gapMark is the "messages were missed" marker, shown above the first
// message after the hole.
func gapMark(s *i18n.Strings, gap bool) app.UI {
	return app.If(gap, func() app.UI {
		return app.Div().Class("gap").DataSet("testid", "gap").Role("note").Text(s.Gap)
	})
}

func timeOf(t time.Time) app.UI {
	if t.IsZero() {
		return nil
	}
	lt := t.Local()
	f := "15:04"
	if y, m, d := time.Now().Date(); lt.Year() != y || lt.Month() != m || lt.Day() != d {
		f = "2006-01-02 15:04"
	}
	return app.Time().Class("time").DateTime(t.UTC().Format(time.RFC3339)).Text(lt.Format(f))
}

// pendingLine is one of the user's messages the server has not
// acknowledged: queued, on its way, or refused with retry and discard.
type pendingLine struct {
	app.Compo

	Ctl    *roomCtl
	Str    *i18n.Strings
	Item   chat.Item
	Self   string
	Queued bool
}

// Render draws the line.
func (c *pendingLine) Render() app.UI {
	s := c.Str
	it := c.Item
	failed := it.State == chat.ItemFailed
	status := s.Pending
	switch {
	case failed:
		status = fmt.Sprintf(s.Failed, s.ErrorText(it.Code))
	case c.Queued:
		status = s.Queued
	}
	return app.Li().
		Class(pick(failed, "msg own failed", "msg own pending")).
		DataSet("client-msg-id", it.ID).
		DataSet("state", string(it.State)).
		Body(
			app.Div().Class("meta").Body(
				app.Span().Class("author").Text(c.Self),
				app.Span().Class("status").Text(status),
			),
			app.P().Class("text").Text(it.Text),
			app.If(failed, func() app.UI {
				return app.Div().Class("retry").Body(
					app.Button().Type("button").DataSet("testid", "retry").Text(s.Retry).OnClick(c.retry),
					app.Button().Type("button").Class("quiet").Text(s.Discard).OnClick(c.discard),
				)
			}),
		)
}

func (c *pendingLine) retry(ctx app.Context, e app.Event) {
	if c.Ctl != nil {
		c.Ctl.Retry(c.Item.ID)
	}
}

func (c *pendingLine) discard(ctx app.Context, e app.Event) {
	if c.Ctl != nil {
		c.Ctl.Discard(c.Item.ID)
	}
}
