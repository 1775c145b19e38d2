package httpapi

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientKey(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	for _, c := range []struct {
		name    string
		trusted bool
		remote  string
		xff     []string
		want    string
	}{
		{"ipv4", false, "192.0.2.1:1234", nil, "192.0.2.1"},
		{"ipv6 by /64", false, "[2001:db8:1:2:3:4:5:6]:1", nil, "2001:db8:1:2::/64"},
		{"same /64, same key", false, "[2001:db8:1:2:ffff::1]:9", nil, "2001:db8:1:2::/64"},
		{"v4-mapped", false, "[::ffff:192.0.2.1]:1", nil, "192.0.2.1"},
		{"zone dropped", false, "[fe80::1%eth0]:1", nil, "fe80::/64"},
		{"forwarded ignored without trusted proxies", false, "10.0.0.1:1", []string{"1.2.3.4"}, "10.0.0.1"},
		{"forwarded ignored from an untrusted peer", true, "192.0.2.9:1", []string{"1.2.3.4"}, "192.0.2.9"},
		{"rightmost forwarded", true, "10.0.0.1:1", []string{"6.6.6.6, 1.2.3.4"}, "1.2.3.4"},
		{"trusted hops skipped", true, "10.0.0.1:1", []string{"1.2.3.4, 10.0.0.2"}, "1.2.3.4"},
		{"several headers", true, "10.0.0.1:1", []string{"6.6.6.6", "1.2.3.4"}, "1.2.3.4"},
		{"garbage keeps the last good address", true, "10.0.0.1:1", []string{"1.2.3.4, nonsense"}, "10.0.0.1"},
		{"no header", true, "10.0.0.1:1", nil, "10.0.0.1"},
		{"forwarded ipv6 by /64", true, "[fd00::1]:1", []string{"2001:db8:5:6::7"}, "2001:db8:5:6::/64"},
		{"all trusted", true, "10.0.0.1:1", []string{"10.0.0.3"}, "10.0.0.3"},
	} {
		s := &Server{}
		if c.trusted {
			s.trustedProxies = proxies
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		for _, v := range c.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := s.clientKey(r); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
