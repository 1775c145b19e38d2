package ui

import (
	"fmt"

	"github.com/maxence-charriere/go-app/v10/pkg/app"
	"github.com/parley-chat/parley/app/chat"
	"github.com/parley-chat/parley/app/i18n"
	"github.com/parley-chat/parley/shared"
)

// roomView lays out an open room: header, notices, members, log and
// composer. It holds no state of its own; each part gets the slice of the
// room's View it shows, so go-app re-renders only the parts whose slice
// changed.
type roomView struct {
	app.Compo

	Env         *env
	Ctl         *roomCtl
	Str         *i18n.Strings
	Lang        i18n.Lang
	Self        string
	View        chat.View
	Installable bool
	OnLeft      *callback[func(app.Context)]
}

// Render draws the room.
func (c *roomView) Render() app.UI {
	v := c.View
	return app.Div().Class("room").Body(
		&roomHeader{
			Env: c.Env, Str: c.Str, Lang: c.Lang, Room: v.Room, Conn: v.Conn, Leader: v.Leader,
			Installable: c.Installable, OnLeft: c.OnLeft,
		},
		&roomNotices{Str: c.Str, Offline: v.Conn == chat.Offline, Fatal: v.Fatal},
		app.Div().Class("body").Body(
			&memberList{Str: c.Str, Members: v.Members, Self: c.Self, Alone: len(v.Members) <= 1 && v.Conn == chat.Connected},
			&messageLog{
				Ctl: c.Ctl, Str: c.Str, Room: v.Room, Self: c.Self, Conn: v.Conn,
				Entries: v.Entries, Outbox: v.Outbox, Hidden: v.Hidden, MoreOnServer: v.MoreOnServer,
			},
		),
		&composer{Ctl: c.Ctl, Str: c.Str},
	)
}

// callback holds a component's callback behind a pointer that the page
// makes once. go-app compares a component's fields with reflect.DeepEqual,
// which never finds two funcs equal: a func field made its component
// render again on every render of its parent.
type callback[F any] struct{ f F }

// roomNotices says the room is offline (showing cached messages) or
// stopped by an error. Both are always rendered, hidden when not needed,
// so nothing shifts the composer's position.
type roomNotices struct {
	app.Compo

	Str     *i18n.Strings
	Offline bool
	Fatal   string
}

// Render draws the notices.
func (c *roomNotices) Render() app.UI {
	s := c.Str
	return app.Div().Class("notices").Body(
		hiddenIf(app.P().Class("offline-note").Role("status").DataSet("testid", "offline-note"),
			!c.Offline).Text(s.OfflineCached),
		app.P().Class("error").Role("alert").Text(pick(c.Fatal != "", s.ErrorText(c.Fatal), "")),
	)
}

// banners are the page-wide notices: a new version is ready, or the
// session could not be stored (this tab keeps it; a reload forgets it).
type banners struct {
	app.Compo

	Str           *i18n.Strings
	UpdateReady   bool
	MemorySession bool
}

// Render draws the banners.
func (c *banners) Render() app.UI {
	s := c.Str
	return app.Div().Class("banners").Body(
		hiddenIf(app.Div().Class("banner").Role("status").DataSet("testid", "update"), !c.UpdateReady).Body(
			app.Span().Text(s.UpdateReady),
			app.Button().Type("button").DataSet("testid", "reload").Text(s.ReloadButton).OnClick(c.reload),
		),
		hiddenIf(app.P().Class("banner").Role("status").DataSet("testid", "storage"), !c.MemorySession).
			Text(s.SessionNotStored),
	)
}

func (c *banners) reload(ctx app.Context, e app.Event) { ctx.Reload() }

// memberList shows who is in the room, the user marked.
type memberList struct {
	app.Compo

	Str     *i18n.Strings
	Members []shared.Member
	Self    string
	// Alone shows the "nobody else here" hint.
	Alone bool
}

// Render draws the list.
func (c *memberList) Render() app.UI {
	s := c.Str
	ms := c.Members
	return app.Aside().Class("members").Aria("labelledby", "members-title").Body(
		app.H2().ID("members-title").Text(fmt.Sprintf(s.MembersTitle, len(ms))),
		app.Ul().DataSet("testid", "members").Body(
			app.Range(ms).Slice(func(i int) app.UI {
				m := ms[i]
				own := m.Name == c.Self
				return app.Li().Class(pick(own, "member own", "member")).DataSet("name", m.Name).Body(
					app.Bdi().Text(m.Name),
					app.If(own, func() app.UI { return app.Span().Class("you").Text(" (" + s.You + ")") }),
				)
			}),
		),
		hiddenIf(app.P().Class("hint"), !c.Alone).Text(s.NobodyHere),
	)
}
