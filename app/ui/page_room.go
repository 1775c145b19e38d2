package ui

// The page's room: which one the URL names, its Syncer, and the Views it
// hands to the room's components.

import (
	"github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/parley-chat/parley/app/chat"
)

// route starts the room the URL names; "/" goes back to the last room when
// there is a session, so a reload lands where the user was. That is a
// replaced history entry, not a navigation: the join form is never drawn
// on the way, and Back does not return to a "/" that forwards again.
func (c *page) route(ctx app.Context) {
	room := roomFromPath(ctx.Page().URL().Path)
	if room == "" {
		if last := chat.LastRoom(c.env.store); c.self != "" && last != "" {
			u := *ctx.Page().URL()
			u.Path, u.RawPath = RoomPath(last), ""
			ctx.Page().ReplaceURL(&u)
			c.startRoom(last)
			return
		}
		c.stopRoom()
		c.room = ""
		c.setTitle(ctx)
		return
	}
	c.startRoom(room)
}

func (c *page) startRoom(room string) {
	if c.room == room && c.ctl != nil {
		return
	}
	c.stopRoom()
	c.room = room
	c.setTitle(c.ctx)
	c.view = chat.View{Room: room, Conn: chat.Reconnecting}
	c.conn, c.roomUp = "", false
	if c.self == "" {
		return
	}
	chat.SaveLastRoom(c.env.store, room)
	ctl := c.env.startRoom(room, baseWindow)
	c.ctl = ctl
	c.current.Store(ctl)
	c.ctx.Async(func() { c.pump(ctl) })
	if c.focusComposer {
		c.focusComposer = false
		// After the render that enables it.
		c.ctx.Defer(func(app.Context) { focus(idComposer) })
	}
}

func (c *page) stopRoom() {
	if c.ctl != nil {
		c.ctl.stop()
	}
	c.ctl = nil
	c.current.Store(nil)
}

// pump hands the room's Views to the UI goroutine, one per turn of the
// pacer: each View is applied and rendered in a browser task of its own,
// and the browser gets its thread (input, paint) before the next, however
// fast messages arrive. The Syncer keeps the newest View meanwhile, so no
// work piles up.
func (c *page) pump(ctl *roomCtl) {
	updates := ctl.syncer.Updates()
	for {
		select {
		case <-ctl.done:
			return
		case v := <-updates:
			c.draw(func() {
				if c.ctl == ctl {
					c.apply(v)
				}
			}, ctl.done)
		}
	}
}

// draw has the UI goroutine run change and go-app draw it, in a turn of
// the pacer (see pacer.Render).
func (c *page) draw(change func(), done <-chan struct{}) {
	c.env.pace.Render(func(rendered func()) {
		c.ctx.Dispatch(func(ctx app.Context) {
			change()
			ctx.Defer(func(app.Context) { rendered() })
		})
	}, done)
}

// apply takes a View of the open room.
func (c *page) apply(v chat.View) {
	c.readSession()
	if v.Conn != c.conn {
		if v.Conn == chat.Connected {
			if c.roomUp {
				// Back after an outage: often a restart, possibly a deploy.
				checkForUpdate()
			}
			c.roomUp = true
		}
		c.conn = v.Conn
	}
	c.view = v
}

// joined is the join form's news: the session is saved, go to room. It
// runs on the page's context: the form that calls it is about to go.
func (c *page) joined(_ app.Context, room string) {
	c.ctx.Dispatch(func(ctx app.Context) {
		c.readSession()
		// The join form and its focused button are gone: without this a
		// keyboard user would be left on the page's start.
		c.focusComposer = true
		if c.room != room {
			ctx.Navigate(RoomPath(room))
			return
		}
		c.room = ""
		c.startRoom(room)
	})
}

// left is the room header's news: the session is gone.
func (c *page) left(app.Context) {
	c.ctx.Dispatch(func(ctx app.Context) {
		c.readSession()
		c.stopRoom()
		c.room = ""
		ctx.Navigate("/")
	})
}
