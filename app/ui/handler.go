// Package ui is the go-app user interface of Parley. It compiles twice: to
// web/app.wasm for the browser and into the server, which prerenders pages and
// serves the app shell through Handler.
package ui

import (
	"log/slog"
	"net/http"
)

// Options configures Handler.
type Options struct {
	// WebDir is the directory holding app.wasm and the static assets.
	WebDir string
	// Logger receives the handler's logs; nil means slog.Default().
	Logger *slog.Logger
}

// Handler serves the app at "/" and its assets under "/web/". The API lives
// on its own paths beside it.
func Handler(o Options) (http.Handler, error) {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("Parley is running. The web UI is not built yet; the API is at /api/.\n"))
	}), nil
}
