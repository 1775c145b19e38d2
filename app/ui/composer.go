package ui

import (
	"fmt"
	"unicode/utf8"

	"github.com/maxence-charriere/go-app/v10/pkg/app"
	"github.com/parley-chat/parley/app/i18n"
	"github.com/parley-chat/parley/shared"
)

const idComposer = "composer"

// composer is where a message is written and sent: Enter sends,
// Shift+Enter is a new line, and the length is checked as the user types.
type composer struct {
	app.Compo

	// Ctl is the open room; nil until it runs (the composer is disabled).
	Ctl *roomCtl
	Str *i18n.Strings

	runes    int // the draft's length
	err      string
	unlisten func()
}

// OnMount stops Enter on the composer in the browser's own dispatch: go-app
// runs OnKeyDown handlers later, on its UI goroutine, so their
// PreventDefault comes after the browser already inserted the newline.
// Shift+Enter and an IME's confirming Enter go through.
func (c *composer) OnMount(ctx app.Context) {
	c.unlisten = listenEvent(app.Window().Get("document"), "keydown", func(e app.Value) {
		if e.Get("target").Get("id").String() == idComposer && isSendKey(e) {
			e.Call("preventDefault")
		}
	})
}

// OnDismount removes the listener.
func (c *composer) OnDismount() {
	if c.unlisten != nil {
		c.unlisten()
		c.unlisten = nil
	}
}

// isSendKey is Enter without Shift, and not confirming an IME composition
// (Chinese input), which must not send half a word.
func isSendKey(e app.Value) bool {
	return e.Get("key").String() == "Enter" && !e.Get("shiftKey").Bool() && !e.Get("isComposing").Bool()
}

// Render draws the composer.
func (c *composer) Render() app.UI {
	s := c.Str
	over := c.runes > shared.MaxTextRunes
	errMsg := c.err
	if errMsg == "" && over {
		errMsg = fmt.Sprintf(s.TextTooLong, c.runes, shared.MaxTextRunes)
	}
	return app.Form().Class("composer").OnSubmit(c.submit).Body(
		app.Label().For(idComposer).Class("sr-only").Text(s.MessageLabel),
		disabledIf(app.Textarea(), c.Ctl == nil).
			ID(idComposer).
			DataSet("testid", "message").
			Rows(2).
			Placeholder(s.Placeholder).
			Aria("label", s.MessageLabel).
			Aria("invalid", errMsg != "").
			Aria("describedby", "composer-error").
			OnInput(c.onInput).
			OnKeyDown(c.onKey),
		app.Div().Class("composer-side").Body(
			hiddenIf(app.Span().Class(pick(over, "counter over", "counter")), c.runes <= shared.MaxTextRunes*9/10).
				Text(fmt.Sprintf(s.Counter, c.runes, shared.MaxTextRunes)),
			disabledIf(app.Button().Type("submit").DataSet("testid", "send"), c.Ctl == nil || over).
				Text(s.SendButton),
		),
		app.P().ID("composer-error").Class("error").Role("alert").DataSet("testid", "composer-error").Text(errMsg),
	)
}

func (c *composer) onInput(ctx app.Context, e app.Event) {
	n := utf8.RuneCountInString(ctx.JSSrc().Get("value").String())
	if n == c.runes && c.err == "" {
		ctx.PreventUpdate()
		return
	}
	c.runes, c.err = n, ""
}

func (c *composer) onKey(ctx app.Context, e app.Event) {
	if !isSendKey(e.Value) {
		ctx.PreventUpdate()
		return
	}
	e.PreventDefault()
	c.send()
}

func (c *composer) submit(ctx app.Context, e app.Event) {
	e.PreventDefault()
	c.send()
}

func (c *composer) send() {
	if c.Ctl == nil {
		return
	}
	text := inputValue(idComposer)
	if err := c.Ctl.Send(text); err != nil {
		c.err = c.textError(text, err)
		return
	}
	setInputValue(idComposer, "")
	c.runes, c.err = 0, ""
	focus(idComposer)
}

func (c *composer) textError(text string, err error) string {
	if shared.ErrorCode(err) == shared.CodeTextTooLong {
		return fmt.Sprintf(c.Str.TextTooLong, utf8.RuneCountInString(text), shared.MaxTextRunes)
	}
	return c.Str.ErrorText(shared.ErrorCode(err))
}
