package httpapi

import (
	"context"
	"fmt"
	"net/http"

	"github.com/parley-chat/parley/server/session"
	"github.com/parley-chat/parley/shared"
)

// allowNewRoom applies the room creation limit to a request that would
// write room's first message: a send, or a session's poll that logs its
// join. Reads create nothing, so they are not counted; every other
// request passes at the cost of the hub's room lookup, which the request
// makes next anyway. Of many first writers of one room, one pays.
func (s *Server) allowNewRoom(ctx context.Context, r *http.Request, room string) error {
	key := "room:" + s.clientKey(r)
	return s.hub.Admit(ctx, room, func(ctx context.Context) error {
		ok, wait, err := s.roomLimit.Allow(ctx, key)
		switch {
		case err != nil:
			return fmt.Errorf("%w: rate limiter: %w", session.ErrStore, err)
		case !ok:
			return withRetry(shared.Errorf(shared.CodeRateLimited, "creating rooms too fast; retry shortly"), wait)
		}
		return nil
	})
}

// allowJoin applies the room creation limit to a session's poll of a room
// it is not present in: its join will be the room's first message if the
// room has none.
func (s *Server) allowJoin(r *http.Request, sess *session.Session, room string) error {
	if sess == nil || s.sessions.Present(sess, room) {
		return nil
	}
	return s.allowNewRoom(r.Context(), r, room)
}
