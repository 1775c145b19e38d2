// Command wasm is the browser side of Parley: built with GOOS=js
// GOARCH=wasm into web/app.wasm (make wasm), it registers the same routes
// as the server's ui.Handler and runs the go-app UI.
package main

import (
	"github.com/maxence-charriere/go-app/v10/pkg/app"
	"github.com/parley-chat/parley/app/ui"
)

func main() {
	ui.Routes()
	app.RunWhenOnBrowser()
}
