// Command wasm is the browser side of Parley: built with GOOS=js
// GOARCH=wasm into web/app.wasm (make wasm), it registers the same routes
// as the server's ui.Handler and runs the go-app UI.
package main

import (
	"github.com/maxence-charriere/go-app/v10/pkg/app"
	"github.com/parley-chat/parley/app/ui"
)

func main() {
	// The start benchmark (TestStartSideBySide) splits Go's start into the
	// runtime's and packages' initialisation (before this line) and the
	// app's first render (after it).
	app.Window().Set("parleyMainAt", app.Window().Get("performance").Call("now"))
	ui.Routes()
	app.RunWhenOnBrowser()
}
