package ui

import (
	"context"
	"strings"
	"time"

	"github.com/maxence-charriere/go-app/v10/pkg/app"
	"github.com/parley-chat/parley/app/chat"
	"github.com/parley-chat/parley/app/i18n"
	"github.com/parley-chat/parley/shared"
)

// roomHeader is the room's name, its connection indicator and the room's
// actions: switch room, language, install, leave.
type roomHeader struct {
	app.Compo

	Env         *env
	Str         *i18n.Strings
	Lang        i18n.Lang
	Room        string
	Conn        chat.ConnState
	Leader      bool
	Installable bool
	OnLeft      *callback[func(app.Context)]

	switchErr string
}

// Render draws the header.
func (c *roomHeader) Render() app.UI {
	s := c.Str
	return app.Header().Class("room-head").Body(
		app.H1().Class("room-name").Body(app.Span().Class("hash").Text("#"), app.Text(c.Room)),
		&connIndicator{Str: s, State: c.Conn, Leader: c.Leader},
		app.Form().Class("switch").OnSubmit(c.switchRoom).Body(
			app.Label().For("switch-room").Class("sr-only").Text(s.SwitchLabel),
			app.Input().ID("switch-room").Type("text").DataSet("testid", "switch-room").
				Placeholder(s.SwitchLabel).Aria("label", s.SwitchLabel),
			app.Button().Type("submit").DataSet("testid", "switch-go").Text(s.SwitchButton),
		),
		app.Div().Class("actions").Body(
			&langSwitch{Str: s, Lang: c.Lang, Enabled: c.Env != nil},
			app.If(c.Installable, func() app.UI {
				return app.Button().Type("button").DataSet("testid", "install").Text(s.InstallButton).OnClick(c.install)
			}),
			app.A().Href(LearnPath).Class("learn-link").DataSet("testid", "learn-link").Text(s.LessonLink),
			app.Button().Type("button").Class("quiet").DataSet("testid", "leave").Text(s.LeaveButton).OnClick(c.leave),
		),
		app.P().Class("error").Role("alert").Text(c.switchErr),
	)
}

func (c *roomHeader) switchRoom(ctx app.Context, e app.Event) {
	e.PreventDefault()
	room := strings.ToLower(strings.TrimSpace(inputValue("switch-room")))
	if shared.ValidateRoom(room) != nil {
		c.switchErr = c.Str.InvalidRoom
		return
	}
	c.switchErr = ""
	setInputValue("switch-room", "")
	ctx.Navigate(RoomPath(room))
}

func (c *roomHeader) install(ctx app.Context, e app.Event) { ctx.ShowAppInstallPrompt() }

// leave ends the session here and, best effort, on the server: an
// unreachable server ends it by its TTL.
func (c *roomHeader) leave(ctx app.Context, e app.Event) {
	if c.Env == nil {
		return
	}
	sess, _ := c.Env.sessions.Get()
	c.Env.sessions.Clear()
	cl := c.Env.client
	ctx.Async(func() {
		lctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = cl.Leave(lctx, sess.Token)
	})
	if c.OnLeft != nil {
		c.OnLeft.f(ctx)
	}
}

// connIndicator shows the room's connection state in words and colour.
type connIndicator struct {
	app.Compo

	Str    *i18n.Strings
	State  chat.ConnState
	Leader bool
}

// Render draws the indicator.
func (c *connIndicator) Render() app.UI {
	s := c.Str
	state := c.State
	if state == "" {
		state = chat.Reconnecting
	}
	label := map[chat.ConnState]string{chat.Connected: s.Connected, chat.Reconnecting: s.Reconnecting, chat.Offline: s.Offline}[state]
	return app.Span().
		Class("conn", "conn-"+string(state)).
		Role("status").
		Title("%s: %s", s.ConnectionName, label).
		DataSet("testid", "connection").
		DataSet("state", string(state)).
		DataSet("leader", c.Leader).
		Body(app.Span().Class("dot").Aria("hidden", true), app.Text(label))
}

// langSwitch picks the UI language; the choice goes to the page through
// the go-app state stateLang.
type langSwitch struct {
	app.Compo

	Str     *i18n.Strings
	Lang    i18n.Lang
	Enabled bool
}

// Render draws the select.
func (c *langSwitch) Render() app.UI {
	return disabledIf(app.Select().
		Class("lang").
		ID("lang").
		Aria("label", c.Str.LangLabel), !c.Enabled).
		OnChange(c.change).
		Body(app.Range(i18n.Langs).Slice(func(i int) app.UI {
			l := i18n.Langs[i]
			return selectedIf(app.Option().Value(string(l)), l == c.Lang).Text(i18n.Get(l).LangName)
		}))
}

func (c *langSwitch) change(ctx app.Context, e app.Event) {
	if l := i18n.Parse(ctx.JSSrc().Get("value").String()); l != "" {
		ctx.SetState(stateLang, l)
	}
}
