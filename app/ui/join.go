package ui

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/maxence-charriere/go-app/v10/pkg/app"
	"github.com/parley-chat/parley/app/api"
	"github.com/parley-chat/parley/app/chat"
	"github.com/parley-chat/parley/app/i18n"
	"github.com/parley-chat/parley/shared"
)

const (
	idName     = "join-name"
	idJoinRoom = "join-room"
)

// joinForm asks for a name (and a room, on "/"), joins, and saves the
// session through the page's one session owner.
type joinForm struct {
	app.Compo

	Env  *env // nil until the wasm runs: the form is disabled
	Str  *i18n.Strings
	Lang i18n.Lang
	// Room is the room of the URL; "" lets the user pick one.
	Room string
	// Name fills the name field (a session whose name must be picked again).
	Name string
	// NeedJoin is the error code that sent the user back here, if any.
	NeedJoin string
	// OnJoined is told the room once the session is saved.
	OnJoined *callback[func(ctx app.Context, room string)]

	joining bool
	err     string
}

// Render draws the form.
func (c *joinForm) Render() app.UI {
	s := c.Str
	enabled := c.Env != nil
	errMsg := c.err
	if errMsg == "" && c.NeedJoin != "" {
		errMsg = s.ErrorText(c.NeedJoin)
	}
	nameInput := disabledIf(app.Input(), !enabled).
		ID(idName).
		Type("text").
		DataSet("testid", "name").
		AutoComplete(true).
		Name("name").
		Required(true).
		AutoFocus(true).
		Aria("invalid", errMsg != "").
		Aria("describedby", "join-error")
	if c.Name != "" {
		// Only set a value when there is one: go-app renders an empty
		// Value as the text "undefined".
		nameInput = nameInput.Value(c.Name)
	}
	return app.Main().Class("join").Body(
		app.Header().Class("join-head").Body(
			app.H1().Text("Parley"),
			&langSwitch{Str: s, Lang: c.Lang, Enabled: enabled},
		),
		app.P().Class("tagline").Text(s.Tagline),
		app.Form().Class("card").OnSubmit(c.join).Body(
			app.H2().Text(s.JoinTitle),
			app.Label().For(idName).Text(s.NameLabel),
			nameInput,
			app.Label().For(idJoinRoom).Text(s.RoomLabel),
			disabledIf(readOnlyIf(app.Input(), c.Room != ""), !enabled).
				ID(idJoinRoom).
				Type("text").
				DataSet("testid", "room").
				Name("room").
				Placeholder(s.RoomsHint).
				Value(orDefault(c.Room, orDefault(c.lastRoom(), shared.DefaultRoom))),
			app.P().ID("join-error").Class("error").Role("alert").DataSet("testid", "join-error").Text(errMsg),
			disabledIf(app.Button().Type("submit").DataSet("testid", "join"), !enabled || c.joining).
				Text(pick(c.joining, s.Joining, s.JoinButton)),
		),
		app.P().Class("learn").Body(
			app.A().Href(LearnPath).Class("learn-link").DataSet("testid", "learn-link").Text(s.LessonLink),
		),
	)
}

func (c *joinForm) lastRoom() string {
	if c.Env == nil {
		return ""
	}
	return chat.LastRoom(c.Env.store)
}

func (c *joinForm) join(ctx app.Context, e app.Event) {
	e.PreventDefault()
	if c.Env == nil || c.joining {
		return
	}
	name, err := shared.NormalizeName(inputValue(idName))
	if err != nil {
		c.err = c.Str.ErrorText(shared.ErrorCode(err))
		focus(idName)
		return
	}
	room := c.Room
	if room == "" {
		if room = strings.TrimSpace(inputValue(idJoinRoom)); room == "" {
			room = shared.DefaultRoom
		}
	}
	if err := shared.ValidateRoom(room); err != nil {
		c.err = c.Str.InvalidRoom
		focus(idJoinRoom)
		return
	}
	c.joining, c.err = true, ""
	env := c.Env
	ctx.Async(func() {
		jctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		resp, err := env.client.Join(jctx, name)
		ctx.Dispatch(func(ctx app.Context) {
			c.joining = false
			if err != nil {
				c.err = c.errorText(err)
				ctx.Defer(func(app.Context) { focus(idName) })
				return
			}
			if err := env.sessions.Save(chat.Session{Name: resp.Name, Token: resp.Token}); err != nil {
				// Sessions keeps it in memory: this tab goes on, and the
				// banners say that a reload will forget it.
				app.Log("the session could not be stored:", err)
			}
			chat.SaveLastRoom(env.store, room)
			if c.OnJoined != nil {
				c.OnJoined.f(ctx, room)
			}
		})
	})
}

func (c *joinForm) errorText(err error) string {
	if api.IsNetwork(err) || errors.Is(err, context.DeadlineExceeded) {
		return c.Str.Unreachable
	}
	return c.Str.ErrorText(api.Code(err))
}
