package httpapi_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkPollCycle measures what one message costs the server end to end
// over loopback: N clients hold a long poll each on their own keep-alive
// connection, a message is sent, every client reads it and polls again.
// parked is the production path (package park); held keeps every poll on
// its handler's goroutine, as net/http alone would (and as HTTP/2 does).
func BenchmarkPollCycle(b *testing.B) {
	for _, mode := range []string{"parked", "held"} {
		for _, n := range []int{100, 1000} {
			b.Run(fmt.Sprintf("%s/clients=%d", mode, n), func(b *testing.B) {
				h := newHarness(b, func(s *settings) { s.noPark = mode == "held"; s.session.MaxHeld = 2 * n })
				tok := h.join("bench")
				addr := strings.TrimPrefix(h.url, "http://")
				var got sync.WaitGroup
				next := make([]chan uint64, n)
				var ready sync.WaitGroup
				ready.Add(n)
				for i := range n {
					next[i] = make(chan uint64, 1)
					c, err := net.Dial("tcp", addr)
					require.NoError(b, err)
					b.Cleanup(func() { _ = c.Close() })
					go pollLoop(c, next[i], &got, &ready)
				}
				cur := uint64(0)
				for _, ch := range next {
					ch <- cur
				}
				ready.Wait()
				for b.Loop() {
					got.Add(n)
					r := h.do("POST", "/api/rooms/bench/messages", tok, jsonType, `{"text":"hello"}`)
					if r.status != http.StatusCreated {
						b.Fatalf("send: %d %s", r.status, r.body)
					}
					got.Wait()
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
			})
		}
	}
}

// pollLoop long-polls room bench over c from the cursor it is given, and
// counts each answer that carries a message.
func pollLoop(c net.Conn, start <-chan uint64, got, ready *sync.WaitGroup) {
	br := bufio.NewReader(c)
	cur := <-start
	first := true
	for {
		if _, err := fmt.Fprintf(c, "GET /api/rooms/bench/messages?after=%d&wait=60 HTTP/1.1\r\nHost: b\r\n\r\n", cur); err != nil {
			return
		}
		if first {
			ready.Done()
			first = false
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return
		}
		var n uint64
		if i := strings.Index(string(body), `"next":`); i >= 0 {
			_, _ = fmt.Sscanf(string(body[i+7:]), "%d", &n)
		}
		if n > cur {
			cur = n
			got.Done()
		}
	}
}
