package ui

import (
	"fmt"
	"sort"
	"time"

	"github.com/maxence-charriere/go-app/v10/pkg/app"
	"github.com/parley-chat/parley/app/chat"
	"github.com/parley-chat/parley/app/i18n"
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
	// blockSize messages make a block of lines. linesPerFrame bounds the
	// lines one render adds (each costs a few DOM calls from wasm): a room
	// that opens, or a burst, fills in over a few frames, newest first,
	// instead of in one long task.
	blockSize     = 5
	linesPerFrame = 5
	// maxEmptyBlocks bounds the empty blocks kept in front of the lines.
	maxEmptyBlocks = 200
	// frame is the pause between two renders that fill blocks.
	frame = 16 * time.Millisecond

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
	// intentAt is when the reader last scrolled by hand.
	intentAt time.Time
	// The lines are rendered in blocks of blockSize messages by seq; the
	// list's children are the blocks from base on, so a block keeps its
	// position while older ones empty and newer ones fill. filled holds
	// the blocks rendered with their lines; the others are empty until a
	// frame has budget for them.
	room   string
	base   uint64
	filled map[uint64]bool
	// lines holds each filled block's entries as last rendered: a block
	// whose messages did not change gets the same slice again, which
	// go-app's reflect.DeepEqual of its properties settles at once.
	lines map[uint64][]chat.Entry
	// more is set while blocks wait for a later frame; scheduled once that
	// frame is asked for.
	more, scheduled bool
	ctx             app.Context
	mounted         bool
}

// OnInit starts at the newest messages.
func (c *messageLog) OnInit() {
	c.pinned, c.window = true, baseWindow
}

// OnMount shows the newest messages.
func (c *messageLog) OnMount(ctx app.Context) {
	c.ctx, c.mounted = ctx, true
	c.scheduleMore()
	c.newest = newestSeq(c.Entries)
	ctx.Defer(func(app.Context) { scrollToBottom(idLog) })
}

// OnDismount stops asking for frames.
func (c *messageLog) OnDismount() { c.mounted = false }

// scheduleMore asks for another render, after the browser's turn, while
// blocks wait to be filled.
func (c *messageLog) scheduleMore() {
	if !c.more || c.scheduled || !c.mounted {
		return
	}
	c.scheduled = true
	c.ctx.After(frame, func(ctx app.Context) {
		c.scheduled = false
		if c.pinned {
			ctx.Defer(func(app.Context) { scrollToBottom(idLog) })
		}
	})
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
	blocks := c.blocks(c.shown())
	c.scheduleMore()
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
			OnWheel(c.onIntent).
			On("touchmove", c.onIntent).
			OnKeyDown(c.onIntent).
			OnMouseDown(c.onIntent).
			Body(
				disabledIf(hiddenIf(app.Button().Type("button").Class("older").DataSet("testid", "load-older"),
					c.Hidden == 0 && !c.MoreOnServer), c.loadingOlder).
					Text(pick(c.loadingOlder, s.Loading, s.LoadOlder)).OnClick(c.loadOlder),
				hiddenIf(app.P().Class("empty"), len(c.Entries) > 0 || len(c.Outbox) > 0).Text(s.Empty),
				app.Ol().Class("messages").Body(
					app.Range(blocks).Slice(func(i int) app.UI { return blocks[i] }),
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

// onIntent notes that the reader is scrolling: the wheel, a finger, the
// keyboard or the scrollbar.
func (c *messageLog) onIntent(ctx app.Context, e app.Event) {
	c.intentAt = time.Now()
	ctx.PreventUpdate()
}

func (c *messageLog) onScroll(ctx app.Context, e app.Event) {
	el := ctx.JSSrc()
	atBottom := el.Get("scrollTop").Float()+el.Get("clientHeight").Float() >= el.Get("scrollHeight").Float()-48
	// Lines added below before the next frame's pin, or the browser's
	// scroll anchoring as blocks fill in above, also scroll the log: only
	// the reader leaves the bottom.
	if !atBottom && time.Since(c.intentAt) > time.Second {
		atBottom = true
	}
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

// blocks groups es into the list's blocks, filling at most linesPerFrame
// lines that were not shown before, newest first, and schedules another
// render when some had to wait.
func (c *messageLog) blocks(es []chat.Entry) []*msgBlock {
	if len(es) == 0 {
		c.base, c.filled = 0, nil
		return nil
	}
	first, last := es[0].Seq/blockSize, es[len(es)-1].Seq/blockSize
	switch {
	case c.filled == nil || c.room != c.Room || (c.pinned && first > c.base+maxEmptyBlocks):
		// A new room, or too many empty blocks in front: start again from
		// empty blocks, filled newest first over the next frames. Removing
		// lines is cheap; the reader at the bottom sees the newest at once.
		c.room, c.base, c.filled, c.lines = c.Room, first, map[uint64]bool{}, map[uint64][]chat.Entry{}
	case first < c.base:
		// Older messages above what is shown (the reader asked for them):
		// every block moves, once.
		c.base = first
	}
	blocks := make([]*msgBlock, last-c.base+1)
	budget := linesPerFrame
	c.more = false
	for b := last; ; b-- {
		i := b - c.base
		blk := &msgBlock{Str: c.Str}
		lo := sort.Search(len(es), func(j int) bool { return es[j].Seq/blockSize >= b })
		hi := sort.Search(len(es), func(j int) bool { return es[j].Seq/blockSize > b })
		lines := es[lo:hi]
		switch {
		case len(lines) == 0:
			delete(c.filled, b)
		case c.filled[b] || (!c.more && (budget >= len(lines) || budget == linesPerFrame)):
			if !c.filled[b] {
				budget -= len(lines)
				c.filled[b] = true
			}
			blk.Entries, blk.Self = c.sameLines(b, lines), c.Self
		default:
			c.more = true
		}
		blocks[i] = blk
		if b == c.base {
			break
		}
	}
	for b := range c.filled {
		if b < c.base || b > last {
			delete(c.filled, b)
		}
	}
	for b := range c.lines {
		if !c.filled[b] {
			delete(c.lines, b)
		}
	}
	return blocks
}

// sameLines returns the slice block b was last rendered with when it holds
// the same messages as lines, else lines, remembered for the next time.
func (c *messageLog) sameLines(b uint64, lines []chat.Entry) []chat.Entry {
	if old, ok := c.lines[b]; ok && len(old) == len(lines) {
		same := true
		for i := range old {
			if old[i].Seq != lines[i].Seq || old[i].GapBefore != lines[i].GapBefore {
				same = false
				break
			}
		}
		if same {
			return old
		}
	}
	c.lines[b] = lines
	return lines
}
