package httpapi

import (
	"fmt"
	"net/http"

	"github.com/parley-chat/parley/shared"
)

// newCrossSite returns the guard that refuses state-changing requests
// (POST, PUT, PATCH, DELETE: every method but GET, HEAD and OPTIONS) sent by
// a page of another site, on every endpoint: without it a foreign page's
// form could post to /send_msg/ or create sessions under the visitor's
// address (issue 8). It is net/http's CrossOriginProtection: a request is
// refused when the browser says Sec-Fetch-Site is anything but same-origin
// or none, or, from older browsers that do not send it, when Origin is
// present and its host is not the request's Host. Requests with neither
// header (curl, the load tools, the textbook page's same-origin jQuery) pass.
// trusted lists further origins ("https://chat.example") allowed to post,
// for a UI served from elsewhere.
func newCrossSite(trusted []string, deny http.Handler) (*http.CrossOriginProtection, error) {
	c := http.NewCrossOriginProtection()
	for _, o := range trusted {
		if err := c.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("httpapi: trusted origin %q: %w", o, err)
		}
	}
	c.SetDenyHandler(deny)
	return c, nil
}

// denyCrossSite answers a request the cross-site guard refused.
func (s *Server) denyCrossSite(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, shared.Errorf(shared.CodeCrossSite, "%s %s from another site is refused", r.Method, r.URL.Path))
}
