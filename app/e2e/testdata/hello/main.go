// Command hello is go-app's own hello world, built with the go-app version
// Parley uses: the end-to-end start benchmark measures it beside Parley in
// the same Chromium. Its server side is in the test (start_test.go).
package main

import "github.com/maxence-charriere/go-app/v10/pkg/app"

type hello struct{ app.Compo }

func (h *hello) Render() app.UI { return app.H1().Text("Hello World!") }

func main() {
	app.Route("/", func() app.Composer { return &hello{} })
	app.RunWhenOnBrowser()
}
