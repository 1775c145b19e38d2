package ui

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/maxence-charriere/go-app/v10/pkg/app"
	"github.com/parley-chat/parley/app/chat"
	"github.com/parley-chat/parley/app/i18n"
	"github.com/parley-chat/parley/shared"
)

// The lines of the log: a block of messages, one message, one of the
// user's messages still on its way.

// warmUpSteps is how many steps warmUpSample has.
const warmUpSteps = 6

// warmUpSample is a hidden piece of log with a line of each kind, which
// the page renders in steps after the start (see page.warmUp): the first
// steps add one kind of line each, the last ones update, move and remove
// lines the way a burst does, so that V8 compiles that code then, a little
// in each task. It has no ids and no test hooks, so nothing mistakes it
// for the room.
func warmUpSample(s *i18n.Strings, step int) app.UI {
	at := time.Unix(0, 0)
	es := []chat.Entry{
		{Message: shared.Message{Seq: 1, Kind: shared.KindJoin, Author: "a", SentAt: at}},
		{Message: shared.Message{Seq: 2, Kind: shared.KindText, Author: "a", Text: "a", ClientMsgID: "c", SentAt: at}, GapBefore: true},
		{Message: shared.Message{Seq: 3, Kind: shared.KindText, Author: "b", Text: "b", SentAt: at, Via: shared.ViaTextbook}},
		{Message: shared.Message{Seq: 4, Kind: shared.KindLeave, Author: "b", SentAt: at}},
		{Message: shared.Message{Seq: 5, Kind: shared.KindText, Author: "c", Text: "c", SentAt: at}},
	}
	var blocks, pending []app.UI
	switch {
	case step <= 3:
		blocks = []app.UI{&msgBlock{Str: s, Entries: es[:step], Self: "a"}}
	case step == 4:
		blocks = []app.UI{&msgBlock{Str: s, Entries: es[:3], Self: "a"}}
		pending = append(pending, &pendingLine{Str: s, Item: chat.Item{ID: "p", Text: "p", State: chat.ItemPending}, Self: "a"})
	case step == 5:
		// The first block loses a line, a second one comes.
		blocks = []app.UI{&msgBlock{Str: s, Entries: es[1:3], Self: "a"}, &msgBlock{Str: s, Entries: es[3:], Self: "a"}}
	default:
		blocks = []app.UI{&msgBlock{Str: s, Entries: es[2:], Self: "a"}}
	}
	return app.Div().Hidden(true).Aria("hidden", true).Body(
		app.Ol().Body(append(blocks, pending...)...),
	)
}

// msgBlock is up to blockSize consecutive lines of the log. As a component
// of its own, a block whose lines did not change is not rendered again.
type msgBlock struct {
	app.Compo

	Str     *i18n.Strings
	Entries []chat.Entry
	Self    string
}

// Render draws the lines; an empty block is an empty element.
func (c *msgBlock) Render() app.UI {
	es := c.Entries
	return app.Div().Class("block").Body(app.Range(es).Slice(func(i int) app.UI {
		e := es[i]
		return &msgLine{Str: c.Str, Entry: e, Own: own(e, c.Self)}
	}))
}

// own reports whether the line is the user's own message. A textbook
// post carries a name anybody typed into /send_msg/: it is never the
// user's, whatever the name.
func own(e chat.Entry, self string) bool {
	return self != "" && e.Author == self && e.Via != shared.ViaTextbook
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
			app.Span().Body(named(f, e.Author)...),
			timeOf(e.SentAt),
		)
	default:
		textbook := e.Via == shared.ViaTextbook
		li = app.Li().Class(pick(c.Own, "msg own", pick(textbook, "msg textbook", "msg"))).Body(
			gapMark(s, e.GapBefore),
			app.Div().Class("meta").Body(
				app.Bdi().Class("author").Text(e.Author),
				app.If(textbook, func() app.UI {
					return app.Span().Class("via").DataSet("testid", "textbook").Title(s.TextbookTitle).Text(s.Textbook)
				}),
				timeOf(e.SentAt),
				app.If(c.Own, func() app.UI {
					return app.Span().Class("status sent").Aria("label", s.Sent).Title(s.Sent).Text("✓")
				}),
			),
			app.P().Class("text").Dir("auto").Text(e.Text),
		)
		if c.Own && e.ClientMsgID != "" {
			li = li.DataSet("client-msg-id", e.ClientMsgID).DataSet("state", "sent")
		}
	}
	return li.DataSet("seq", strconv.FormatUint(e.Seq, 10)).DataSet("kind", string(e.Kind))
}

// named is format's text around its one %s, the name in a bidi isolate of
// its own: a name in a right-to-left script, or with direction controls
// (stored before the server refused them), cannot reorder the words and
// the time after it.
func named(format, name string) []app.UI {
	before, after, _ := strings.Cut(format, "%s")
	var out []app.UI
	if before != "" {
		out = append(out, app.Text(before))
	}
	out = append(out, app.Bdi().Class("name").Text(name))
	if after != "" {
		out = append(out, app.Text(after))
	}
	return out
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
				app.Bdi().Class("author").Text(c.Self),
				app.Span().Class("status").Text(status),
			),
			app.P().Class("text").Dir("auto").Text(it.Text),
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
