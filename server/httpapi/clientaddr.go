package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/parley-chat/parley/server/connlimit"
)

// clientKey is the key under which a request's client is rate-limited: its
// address, with IPv6 addresses cut to their /64, since one host is commonly
// given a whole /64 and could otherwise take a fresh key per request.
// Behind trusted proxies (Config.TrustedProxies) the address is the
// rightmost one of X-Forwarded-For that is not itself a trusted proxy: what
// the nearest trusted proxy saw, which a client cannot forge by sending a
// header of its own (entries to its left can be anything).
func (s *Server) clientKey(r *http.Request) string {
	addr, ok := peerAddr(r.RemoteAddr)
	if !ok {
		return r.RemoteAddr
	}
	if s.trusted(addr) {
		xff := r.Header.Values("X-Forwarded-For")
	walk:
		for i := len(xff) - 1; i >= 0; i-- {
			hops := strings.Split(xff[i], ",")
			for j := len(hops) - 1; j >= 0; j-- {
				hop, err := netip.ParseAddr(strings.TrimSpace(hops[j]))
				if err != nil {
					break walk // garbage: keep the last good address
				}
				addr = hop.Unmap()
				if !s.trusted(addr) {
					break walk
				}
			}
		}
	}
	return keyString(addr)
}

// keyString writes connlimit.Key, the one rule for what counts as one
// client (the connection cap uses it too): an IPv4 address as itself, an
// IPv6 address as its /64.
func keyString(a netip.Addr) string {
	if k := connlimit.Key(a); a.Is6() {
		return k.String()
	}
	return a.String()
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.trustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func peerAddr(remote string) (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.WithZone("").Unmap(), true
}
