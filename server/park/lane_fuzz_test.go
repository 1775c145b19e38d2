package park

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// FuzzLaneParse holds the lane's request parser, which reads what any
// client on the internet sends, to net/http's: whatever the lane accepts,
// net/http reads the same way (method, target, host, headers, Close), and
// nothing makes it panic. What it refuses goes to net/http anyway.
func FuzzLaneParse(f *testing.F) {
	for _, s := range []string{
		"GET /api/rooms/lobby/messages?after=1&wait=25 HTTP/1.1\r\nHost: x\r\nUser-Agent: y\r\n\r\n",
		"GET /api/x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"GET /api/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		"GET /api/x HTTP/1.1\r\nHost: a\r\nX:  spaced\t\r\nx-lower: v\r\n\r\n",
		"GET /api/%zz HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /api/x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
		"GET /other HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /api/x HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /api/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET /api/x HTTP/1.1\r\nHost: a\r\nConnection: notclose, Keep-Alive\r\n\r\n",
		"GET /api/x HTTP/1.0\r\nConnection: keep-alive,close\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	c := &conn{lot: &Lot{prefix: "/api/"}, remote: "127.0.0.1:1"}
	f.Fuzz(func(t *testing.T, raw []byte) {
		end := bytes.Index(raw, []byte("\r\n\r\n"))
		if end < 0 {
			return // the lane parses only a complete head
		}
		head := raw[:end+2]
		req, ok := c.parse(head)
		if !ok {
			return
		}
		want, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw[:end+4])))
		if err != nil {
			t.Fatalf("lane accepted what net/http refuses (%v): %q", err, head)
		}
		if req.Method != want.Method || req.RequestURI != want.RequestURI || req.URL.String() != want.URL.String() ||
			req.Host != want.Host || req.Close != want.Close || req.ProtoMinor != want.ProtoMinor {
			t.Fatalf("%q:\nlane     %s %s %q host=%q close=%v minor=%d\nnet/http %s %s %q host=%q close=%v minor=%d", head,
				req.Method, req.RequestURI, req.URL, req.Host, req.Close, req.ProtoMinor,
				want.Method, want.RequestURI, want.URL, want.Host, want.Close, want.ProtoMinor)
		}
		for k, vs := range want.Header {
			if k == "Host" {
				continue // net/http moves it to Request.Host
			}
			if strings.Join(req.Header[k], "\x00") != strings.Join(vs, "\x00") {
				t.Fatalf("%q: header %s: lane %q, net/http %q", head, k, req.Header[k], vs)
			}
		}
		for k := range req.Header {
			if _, ok := want.Header[k]; !ok && k != "Host" {
				t.Fatalf("%q: lane has header %s that net/http does not", head, k)
			}
		}
	})
}
