package ui

import (
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/maxence-charriere/go-app/v10/pkg/app"
	"github.com/parley-chat/parley/app/chat"
	"github.com/parley-chat/parley/app/i18n"
	"github.com/parley-chat/parley/shared"
)

// Render draws the page. Every piece of user text goes through app.Text,
// a DOM text node: it is never parsed as HTML.
func (c *shell) Render() app.UI {
	if c.str == nil {
		c.str = i18n.Get(i18n.EN)
	}
	s := c.str
	showJoin := !c.hasSession || c.room == "" || c.view.NeedJoin != ""
	// go-app diffs children by position: an element that comes and goes
	// in front of the composer would make it be rebuilt, dropping what the
	// user is typing. Such elements are always rendered, and hidden.
	return app.Div().
		Class("parley").
		DataSet("ready", c.mounted).
		DataSet("testid", "app").
		DataSet("version", c.version).
		Body(
			c.renderBanner(),
			app.P().Class("starting").Role("status").Hidden(c.mounted).Text(s.Starting),
			app.If(showJoin, func() app.UI { return c.renderJoin() }).
				Else(func() app.UI { return c.renderRoom() }),
		)
}

func (c *shell) renderBanner() app.UI {
	s := c.str
	return app.Div().Class("banner").Role("status").DataSet("testid", "update").Hidden(!c.updateReady).Body(
		app.Span().Text(s.UpdateReady),
		app.Button().Type("button").DataSet("testid", "reload").Text(s.ReloadButton).OnClick(c.reload),
	)
}

func (c *shell) renderLangSwitch() app.UI {
	s := c.str
	return app.Select().
		Class("lang").
		ID("lang").
		Aria("label", s.LangLabel).
		Disabled(!c.mounted).
		OnChange(c.changeLang).
		Body(app.Range(i18n.Langs).Slice(func(i int) app.UI {
			l := i18n.Langs[i]
			return app.Option().Value(string(l)).Selected(l == c.lang).Text(i18n.Get(l).LangName)
		}))
}

func (c *shell) renderJoin() app.UI {
	s := c.str
	errMsg := c.joinErr
	if errMsg == "" && c.view.NeedJoin != "" && c.hasSession {
		errMsg = s.ErrorText(c.view.NeedJoin)
	}
	room := c.room
	nameInput := app.Input().
		ID(idName).
		Type("text").
		DataSet("testid", "name").
		AutoComplete(true).
		Name("name").
		Required(true).
		AutoFocus(true).
		Disabled(!c.mounted).
		Aria("invalid", errMsg != "").
		Aria("describedby", "join-error")
	if c.sess.Name != "" {
		// Only set a value when there is one: go-app renders an empty
		// Value as the text "undefined".
		nameInput = nameInput.Value(c.sess.Name)
	}
	return app.Main().Class("join").Body(
		app.Header().Class("join-head").Body(
			app.H1().Text("Parley"),
			c.renderLangSwitch(),
		),
		app.P().Class("tagline").Text(s.Tagline),
		app.Form().Class("card").OnSubmit(c.join).Body(
			app.H2().Text(s.JoinTitle),
			app.Label().For(idName).Text(s.NameLabel),
			nameInput,
			app.Label().For("join-room").Text(s.RoomLabel),
			app.Input().
				ID("join-room").
				Type("text").
				DataSet("testid", "room").
				Name("room").
				Placeholder(s.RoomsHint).
				Value(orDefault(room, orDefault(c.lastRoom(), shared.DefaultRoom))).
				ReadOnly(room != "").
				Disabled(!c.mounted),
			app.P().ID("join-error").Class("error").Role("alert").DataSet("testid", "join-error").Text(errMsg),
			app.Button().
				Type("submit").
				DataSet("testid", "join").
				Disabled(!c.mounted || c.joining).
				Text(pick(c.joining, s.Joining, s.JoinButton)),
		),
	)
}

func (c *shell) lastRoom() string {
	if c.store == nil {
		return ""
	}
	return chat.LastRoom(c.store)
}

func (c *shell) renderRoom() app.UI {
	s := c.str
	v := c.view
	return app.Div().Class("room").Body(
		app.Header().Class("room-head").Body(
			app.H1().Class("room-name").Body(app.Span().Class("hash").Text("#"), app.Text(c.room)),
			c.renderConn(),
			app.Form().Class("switch").OnSubmit(c.switchRoom).Body(
				app.Label().For("switch-room").Class("sr-only").Text(s.SwitchLabel),
				app.Input().ID("switch-room").Type("text").DataSet("testid", "switch-room").
					Placeholder(s.SwitchLabel).Aria("label", s.SwitchLabel),
				app.Button().Type("submit").DataSet("testid", "switch-go").Text(s.SwitchButton),
			),
			app.Div().Class("actions").Body(
				c.renderLangSwitch(),
				app.If(c.installable, func() app.UI {
					return app.Button().Type("button").DataSet("testid", "install").Text(s.InstallButton).OnClick(c.install)
				}),
				app.Button().Type("button").Class("quiet").DataSet("testid", "leave").Text(s.LeaveButton).OnClick(c.leave),
			),
			app.P().Class("error").Role("alert").Text(c.switchTo),
		),
		app.P().Class("offline-note").Role("status").DataSet("testid", "offline-note").
			Hidden(v.Conn != chat.Offline).Text(s.OfflineCached),
		app.P().Class("error").Role("alert").Text(pick(v.Fatal != "", s.ErrorText(v.Fatal), "")),
		app.Div().Class("body").Body(
			c.renderMembers(),
			app.Div().Class("timeline").Body(
				c.renderLog(),
				app.If(c.unseen > 0, func() app.UI {
					return app.Button().Type("button").Class("pill").DataSet("testid", "new-messages").
						Text(s.NewMessages).OnClick(c.jumpToNewest)
				}),
			),
		),
		c.renderComposer(),
	)
}

func (c *shell) renderConn() app.UI {
	s := c.str
	state := c.view.Conn
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
		DataSet("leader", c.view.Leader).
		Body(app.Span().Class("dot").Aria("hidden", true), app.Text(label))
}

func (c *shell) renderMembers() app.UI {
	s := c.str
	ms := c.view.Members
	return app.Aside().Class("members").Aria("labelledby", "members-title").Body(
		app.H2().ID("members-title").Text(fmt.Sprintf(s.MembersTitle, len(ms))),
		app.Ul().DataSet("testid", "members").Body(
			app.Range(ms).Slice(func(i int) app.UI {
				m := ms[i]
				own := m.Name == c.sess.Name
				return app.Li().Class(pick(own, "member own", "member")).DataSet("name", m.Name).Body(
					app.Text(m.Name),
					app.If(own, func() app.UI { return app.Span().Class("you").Text(" (" + s.You + ")") }),
				)
			}),
		),
		app.P().Class("hint").Hidden(len(ms) > 1 || c.view.Conn != chat.Connected).Text(s.NobodyHere),
	)
}

func (c *shell) renderLog() app.UI {
	s := c.str
	v := c.view
	return app.Div().
		ID(idLog).
		Class("log").
		Role("log").
		Aria("live", "polite").
		Aria("label", fmt.Sprintf(s.LogLabel, c.room)).
		DataSet("testid", "log").
		TabIndex(0).
		OnScroll(c.onLogScroll).
		Body(
			app.Button().Type("button").Class("older").DataSet("testid", "load-older").
				Hidden(v.Hidden == 0 && !v.MoreOnServer).
				Disabled(c.loadingOlder).
				Text(pick(c.loadingOlder, s.Loading, s.LoadOlder)).OnClick(c.loadOlder),
			app.P().Class("empty").Hidden(len(v.Entries) > 0 || len(v.Outbox) > 0).Text(s.Empty),
			app.Ol().Class("messages").Body(
				app.Range(v.Entries).Slice(func(i int) app.UI { return c.renderEntry(v.Entries[i]) }),
				app.Range(v.Outbox).Slice(func(i int) app.UI { return c.renderPending(v.Outbox[i]) }),
			),
		)
}

func (c *shell) renderEntry(e chat.Entry) app.UI {
	s := c.str
	var li app.HTMLLi
	switch e.Kind {
	case shared.KindJoin, shared.KindLeave:
		f := s.Joined
		if e.Kind == shared.KindLeave {
			f = s.Left
		}
		li = app.Li().Class("msg system").Body(
			c.renderGap(e.GapBefore),
			app.Span().Text(fmt.Sprintf(f, e.Author)),
			c.renderTime(e.SentAt),
		)
	default:
		own := e.Author == c.sess.Name && c.sess.Name != ""
		li = app.Li().Class(pick(own, "msg own", "msg")).Body(
			c.renderGap(e.GapBefore),
			app.Div().Class("meta").Body(
				app.Span().Class("author").Text(e.Author),
				c.renderTime(e.SentAt),
				app.If(own, func() app.UI {
					return app.Span().Class("status sent").Aria("label", s.Sent).Title(s.Sent).Text("✓")
				}),
			),
			app.P().Class("text").Text(e.Text),
		)
		if own && e.ClientMsgID != "" {
			li = li.DataSet("client-msg-id", e.ClientMsgID).DataSet("state", "sent")
		}
	}
	return li.DataSet("seq", strconv.FormatUint(e.Seq, 10)).DataSet("kind", string(e.Kind))
}

// renderGap is the "messages were missed" marker, shown above the first
// message after the hole.
func (c *shell) renderGap(gap bool) app.UI {
	return app.If(gap, func() app.UI {
		return app.Div().Class("gap").DataSet("testid", "gap").Role("note").Text(c.str.Gap)
	})
}

func (c *shell) renderTime(t time.Time) app.UI {
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

func (c *shell) renderPending(it chat.Item) app.UI {
	s := c.str
	failed := it.State == chat.ItemFailed
	status := s.Pending
	switch {
	case failed:
		status = fmt.Sprintf(s.Failed, s.ErrorText(it.Code))
	case c.view.Conn != chat.Connected:
		status = s.Queued
	}
	return app.Li().
		Class(pick(failed, "msg own failed", "msg own pending")).
		DataSet("client-msg-id", it.ID).
		DataSet("state", string(it.State)).
		Body(
			app.Div().Class("meta").Body(
				app.Span().Class("author").Text(c.sess.Name),
				app.Span().Class("status").Text(status),
			),
			app.P().Class("text").Text(it.Text),
			app.If(failed, func() app.UI {
				return app.Div().Class("retry").Body(
					app.Button().Type("button").DataSet("testid", "retry").Text(s.Retry).OnClick(c.retry(it.ID)),
					app.Button().Type("button").Class("quiet").Text(s.Discard).OnClick(c.discard(it.ID)),
				)
			}),
		)
}

func (c *shell) renderComposer() app.UI {
	s := c.str
	n := utf8.RuneCountInString(c.draft)
	over := n > shared.MaxTextRunes
	errMsg := c.composeErr
	if errMsg == "" && over {
		errMsg = fmt.Sprintf(s.TextTooLong, n, shared.MaxTextRunes)
	}
	return app.Form().Class("composer").OnSubmit(func(ctx app.Context, e app.Event) {
		e.PreventDefault()
		c.send(ctx, e)
	}).Body(
		app.Label().For(idComposer).Class("sr-only").Text(s.MessageLabel),
		app.Textarea().
			ID(idComposer).
			DataSet("testid", "message").
			Rows(2).
			Placeholder(s.Placeholder).
			Aria("label", s.MessageLabel).
			Aria("invalid", errMsg != "").
			Aria("describedby", "composer-error").
			Disabled(!c.mounted || c.syncer == nil).
			OnInput(c.onDraft).
			OnKeyDown(c.onComposerKey),
		app.Div().Class("composer-side").Body(
			app.Span().Class(pick(over, "counter over", "counter")).Hidden(n <= shared.MaxTextRunes*9/10).
				Text(fmt.Sprintf(s.Counter, n, shared.MaxTextRunes)),
			app.Button().
				Type("submit").
				DataSet("testid", "send").
				Disabled(!c.mounted || c.syncer == nil || over).
				Text(s.SendButton),
		),
		app.P().ID("composer-error").Class("error").Role("alert").DataSet("testid", "composer-error").Text(errMsg),
	)
}

func pick(cond bool, a, b string) string {
	if cond {
		return a
	}
	return b
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
