package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/parley-chat/parley/app/api"
	"github.com/parley-chat/parley/server/cmd/internal/loadkit"
	"github.com/parley-chat/parley/shared"
)

// sender is one session, with a client on the transport of its source
// address.
type sender struct {
	api   *api.Client
	token string
}

// sourceTransport returns a transport whose connections leave from ip. The
// server limits session creation per client address; on loopback every
// 127.0.0.0/8 address is this machine, so spreading the senders over a few
// of them stays within that limit without changing the server.
func sourceTransport(ip net.IP, conns int) *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	if ip != nil {
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	return &http.Transport{
		DialContext:         d.DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
}

// createSessions makes one session per sender, spread over loopback source
// addresses, and returns a function that ends them.
func (lr *loadRun) createSessions(ctx context.Context, ip net.IP) ([]*sender, func(), error) {
	cfg := lr.cfg
	var transports []*http.Transport
	closeAll := func() {}
	out := make([]*sender, cfg.senders)
	for i := range out {
		k := i / cfg.perIP
		if k >= len(transports) {
			var src net.IP
			if ip4 := ip.To4(); ip4 != nil && ip4[0] == 127 {
				// 127.0.0.2, .3, … on IPv4 loopback; 127.0.0.1 is the pollers'.
				src = net.IPv4(127, 0, byte((k+2)>>8), byte((k+2)&0xff))
			} else if k > 0 {
				return nil, closeAll, fmt.Errorf("%d senders need more than one source address, and %v offers only one; use at most %d senders or a 127.x.x.x URL", cfg.senders, ip, cfg.perIP)
			}
			transports = append(transports, sourceTransport(src, cfg.perIP+4))
		}
		out[i] = &sender{api: &api.Client{Base: lr.target.String(), HTTP: &http.Client{Transport: transports[k], Timeout: 30 * time.Second}}}
	}
	closeAll = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		for _, s := range out {
			if s.token != "" {
				wg.Go(func() { _ = s.api.Leave(ctx, s.token) })
			}
		}
		wg.Wait()
		for _, t := range transports {
			t.CloseIdleConnections()
		}
	}
	var wg sync.WaitGroup
	errc := make(chan error, len(out))
	for i, s := range out {
		wg.Go(func() {
			name := fmt.Sprintf("load%s-%d", lr.runID, i)
			for attempt := 0; ; attempt++ {
				sr, err := s.api.Join(ctx, name)
				if err == nil {
					s.token = sr.Token
					return
				}
				if api.Code(err) != shared.CodeRateLimited || attempt > 30 || !loadkit.Sleep(ctx, max(api.RetryAfter(err), time.Second)) {
					errc <- fmt.Errorf("create session %s: %w", name, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	return out, closeAll, <-errc
}
