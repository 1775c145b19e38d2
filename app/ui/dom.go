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

// go-app writes a boolean attribute set to false into the prerendered
// page as attr="false", and a browser reads any value of a boolean
// attribute as true: before the wasm ran, "Starting…" was hidden and
// 简体中文 selected. In the browser go-app sets the DOM property instead,
// so only the prerendered page was wrong. These set the attribute only
// when it is true; an absent one is false in both.

func hiddenIf[E interface{ Hidden(bool) E }](e E, on bool) E {
	if on {
		return e.Hidden(true)
	}
	return e
}

func disabledIf[E interface{ Disabled(bool) E }](e E, on bool) E {
	if on {
		return e.Disabled(true)
	}
	return e
}

func selectedIf[E interface{ Selected(bool) E }](e E, on bool) E {
	if on {
		return e.Selected(true)
	}
	return e
}

func readOnlyIf[E interface{ ReadOnly(bool) E }](e E, on bool) E {
	if on {
		return e.ReadOnly(true)
	}
	return e
}
