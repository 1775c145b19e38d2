package ui

import "github.com/maxence-charriere/go-app/v10/pkg/app"

// Small DOM helpers for what go-app does not do: read and clear a field the
// user typed in, move the focus, keep the log's scroll position.

func inputValue(id string) string {
	el := app.Window().GetElementByID(id)
	if !el.Truthy() {
		return ""
	}
	return el.Get("value").String()
}

func setInputValue(id, v string) {
	if el := app.Window().GetElementByID(id); el.Truthy() {
		// go-app does not clear a field the user typed in when its Value
		// attribute is set again (go-app #1083): set the DOM property.
		el.Set("value", v)
	}
}

func focus(id string) {
	if el := app.Window().GetElementByID(id); el.Truthy() {
		el.Call("focus")
	}
}

// pinFunc scrolls an element to its bottom in the browser's next frame,
// as a JavaScript function: reading scrollHeight right after go-app changed
// the DOM would force a layout inside the wasm's task; in a frame callback
// it is the layout the frame does anyway.
var pinFunc app.Value

// scrollToBottom scrolls the element with id to its end before the next
// paint.
func scrollToBottom(id string) {
	if pinFunc == nil {
		pinFunc = app.Window().Get("Function").New("id",
			`requestAnimationFrame(() => { const el = document.getElementById(id); if (el) el.scrollTop = el.scrollHeight; })`)
	}
	pinFunc.Invoke(id)
}

// keepScrollPosition returns a func that, after older messages were added
// above, scrolls so the same messages stay under the reader's eyes.
func keepScrollPosition(id string) func() {
	el := app.Window().GetElementByID(id)
	if !el.Truthy() {
		return func() {}
	}
	before := el.Get("scrollHeight").Float() - el.Get("scrollTop").Float()
	return func() {
		if el := app.Window().GetElementByID(id); el.Truthy() {
			el.Set("scrollTop", el.Get("scrollHeight").Float()-before)
		}
	}
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
