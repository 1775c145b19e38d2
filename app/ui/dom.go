package ui

import (
	"sync"

	"github.com/maxence-charriere/go-app/v10/pkg/app"
)

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

// pin scrolls elements to their bottom in the browser's next frame: reading
// scrollHeight right after go-app changed the DOM would force a layout
// inside the wasm's task; in a frame callback it is the layout the frame
// does anyway. The callback is a Go function, not JavaScript made from a
// string, which the server's Content-Security-Policy (no 'unsafe-eval')
// refuses to run.
var pin struct {
	mu      sync.Mutex
	ids     map[string]bool // scrolled in the next frame
	frame   app.Func        // made once, for every frame
	pending bool            // a frame is requested
}

// scrollToBottom scrolls the element with id to its end before the next
// paint.
func scrollToBottom(id string) {
	pin.mu.Lock()
	defer pin.mu.Unlock()
	if pin.frame == nil {
		pin.ids = make(map[string]bool)
		pin.frame = app.FuncOf(func(app.Value, []app.Value) any {
			pin.mu.Lock()
			ids := pin.ids
			pin.ids, pin.pending = make(map[string]bool), false
			pin.mu.Unlock()
			for id := range ids {
				if el := app.Window().GetElementByID(id); el.Truthy() {
					el.Set("scrollTop", el.Get("scrollHeight").Float())
				}
			}
			return nil
		})
	}
	pin.ids[id] = true
	if !pin.pending {
		pin.pending = true
		app.Window().Call("requestAnimationFrame", pin.frame)
	}
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
