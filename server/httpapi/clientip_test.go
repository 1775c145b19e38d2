package httpapi_test

import (
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"
)

// Behind a trusted proxy the per-address session limit counts each client
// by its X-Forwarded-For address, not the proxy's; a client cannot escape
// it by forging the header when it is not the proxy.
func TestSessionLimitUsesForwardedForFromTrustedProxies(t *testing.T) {
	h := newHarness(t, func(s *settings) {
		s.api.SessionRate, s.api.SessionBurst = rate.Every(1e12), 1
		s.api.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	create := func(name, xff string) int {
		req, err := http.NewRequest(http.MethodPost, h.url+"/api/session", strings.NewReader(url.Values{"name": {name}}.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", formType)
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		resp, err := h.client.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusCreated, create("a", "203.0.113.1"))
	require.Equal(t, http.StatusTooManyRequests, create("b", "203.0.113.1"), "same client, one session allowed")
	require.Equal(t, http.StatusCreated, create("c", "203.0.113.2"), "another client")
	require.Equal(t, http.StatusCreated, create("d", "198.51.100.9, 203.0.113.3"), "the nearest untrusted hop counts")
	require.Equal(t, http.StatusTooManyRequests, create("e", "198.51.100.9, 203.0.113.3"))
	require.Equal(t, http.StatusTooManyRequests, create("f", "not-an-ip, 203.0.113.3"))
}
