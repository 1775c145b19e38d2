// Package loadkit holds what Parley's load tools share: the loopback-only
// guard, a lean HTTP/1.1 client for one keep-alive connection, the lean
// poll answer, a cancellable sleep and the address bin/parley logs.
package loadkit

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// LoopbackTarget parses raw as an http(s) URL and refuses it unless every
// address its host resolves to is a loopback address: the load tools are
// load generators, and must not be pointed at someone else's service. It
// returns the URL without a trailing slash and the first address.
func LoopbackTarget(ctx context.Context, raw string) (*url.URL, net.IP, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, nil, fmt.Errorf("-url %q is not an http URL", raw)
	}
	ips, err := net.DefaultResolver.LookupIP(ctx, "ip", u.Hostname())
	if err != nil {
		return nil, nil, fmt.Errorf("-url: %w", err)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return nil, nil, fmt.Errorf("-url %q resolves to %v, which is not a loopback address", raw, ip)
		}
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, ips[0], nil
}

// Sleep waits d or until ctx ends, and reports whether ctx is still live.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
