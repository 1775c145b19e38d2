package ui

import (
	"strings"
	"sync"

	"github.com/maxence-charriere/go-app/v10/pkg/app"
	"github.com/parley-chat/parley/shared"
)

// roomPathPattern matches /r/{room} with the server's room name rule, so a
// URL the server would refuse never reaches the component.
const roomPathPattern = `^/r/[a-z0-9][a-z0-9_-]{0,63}$`

var routesOnce sync.Once

// Routes registers the app's pages with go-app. The wasm main and Handler
// both call it: go-app answers 404 on the server for a path no route
// matches, and prerenders the pages that do.
func Routes() {
	routesOnce.Do(func() {
		app.Route("/", newPage)
		app.RouteWithRegexp(roomPathPattern, newPage)
		app.Route(LearnPath, newLesson)
	})
}

func newPage() app.Composer { return &page{} }

// roomFromPath returns the room of a /r/{room} path, "" for any other.
func roomFromPath(p string) string {
	room, ok := strings.CutPrefix(p, "/r/")
	if !ok || shared.ValidateRoom(room) != nil {
		return ""
	}
	return room
}

// RoomPath is the app's URL path of room.
func RoomPath(room string) string { return "/r/" + room }
