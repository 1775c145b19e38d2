package park

import (
	"bytes"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// laneBufSize bounds a request read on the lane; a longer one (big
// cookies, say) is handed to net/http, whose limits then apply.
const laneBufSize = 4 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, laneBufSize); return &b }}

// pollers is how many goroutines wait on the epoll set and serve what it
// reports, each on its own share of the events: no hand-off between a
// reader and a worker, so no wake-up per request.
func pollers() int { return max(2, runtime.GOMAXPROCS(0)) }

func (c *conn) releaseBuf() {
	c.mu.Lock()
	b := c.buf
	c.buf = nil
	c.mu.Unlock()
	if b != nil {
		b = b[:0]
		bufPool.Put(&b)
	}
}

// serve reads what arrived on c (which is busy) and serves the request it
// completes.
func (c *conn) serve() {
	c.mu.Lock()
	buf := c.buf
	c.mu.Unlock()
	if buf == nil {
		buf = (*bufPool.Get().(*[]byte))[:0]
	}
	for {
		n, eof, err := tryRead(c.rc, buf[len(buf):cap(buf)])
		switch {
		case err != nil || eof:
			c.setBuf(buf)
			c.close()
			return
		case n == 0:
			// Nothing more for now (the socket is edge-triggered: the next
			// data brings a new event).
			if len(buf) == 0 {
				bufPool.Put(&buf)
				buf = nil
			}
			c.setBuf(buf)
			c.toIdle()
			return
		}
		if len(buf) == 0 {
			c.mu.Lock()
			c.headAt = time.Now()
			c.mu.Unlock()
		}
		buf = buf[:len(buf)+n]
		end := bytes.Index(buf, []byte("\r\n\r\n"))
		if end < 0 {
			if len(buf) == cap(buf) {
				c.fallback(buf)
				return
			}
			continue
		}
		// The request must be all there is: a full buffer may hide more,
		// and bytes after it are a pipelined request; net/http handles both.
		if end+4 != len(buf) || len(buf) == cap(buf) {
			c.fallback(buf)
			return
		}
		req, ok := c.parse(buf[:end+2])
		if !ok {
			c.fallback(buf)
			return
		}
		buf = buf[:0]
		bufPool.Put(&buf)
		c.setBuf(nil)
		c.handle(req)
		return
	}
}

func (c *conn) setBuf(b []byte) {
	c.mu.Lock()
	c.buf = b
	c.mu.Unlock()
}

// handle runs the handler for req and moves c on: parked, answered, or
// closed.
func (c *conn) handle(req *http.Request) {
	c.lot.served.Add(1)
	// Requests on one connection come one after another, and a parked
	// answer keeps its headers rendered, not the map: reuse it.
	if c.hdr == nil {
		c.hdr = make(http.Header, 4)
	}
	clear(c.hdr)
	w := &laneWriter{c: c, req: req, h: c.hdr}
	defer func() {
		if v := recover(); v != nil {
			c.lot.opt.Logger.Error("park: panic serving a lane request", "path", req.URL.Path, "panic", v)
			c.close()
		}
	}()
	c.lot.handler.ServeHTTP(w, req)
	if w.spot != nil {
		c.mu.Lock()
		if c.replied {
			c.replied = false
			c.mu.Unlock()
			c.next(w.spot.close || c.lot.isClosing())
			return
		}
		if c.state == closed {
			c.mu.Unlock()
			return
		}
		c.state, c.spot = parked, w.spot
		c.mu.Unlock()
		return
	}
	closing := req.Close || c.lot.isClosing()
	c.write(w.response(closing), func() { c.next(closing) })
}

// fallback hands c to net/http with the bytes read so far.
func (c *conn) fallback(read []byte) {
	c.lot.poll.del(c)
	data := append([]byte(nil), read...)
	read = read[:0]
	bufPool.Put(&read)
	c.setBuf(nil)
	if c.forget() {
		c.lot.giveBack(&prefixConn{TCPConn: tcpOf(c.nc), outer: c.nc, pending: data})
	}
}

// prefixConn is a connection whose first bytes were already read.
type prefixConn struct {
	*net.TCPConn
	// outer is the connection as accepted, closed in the socket's stead so
	// that its owner (a connection cap) sees the close.
	outer   net.Conn
	pending []byte
}

func (p *prefixConn) Close() error { return p.outer.Close() }

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.pending) > 0 {
		n := copy(b, p.pending)
		p.pending = p.pending[n:]
		return n, nil
	}
	return p.TCPConn.Read(b)
}

// parse reads the request line and headers in head (which ends with the
// CRLF of the last header). It takes only what the lane serves: a GET
// under the prefix, without a body, upgrade or expectation; anything else,
// or anything malformed, is left to net/http, which answers it properly.
func (c *conn) parse(head []byte) (*http.Request, bool) {
	line, rest, ok := bytes.Cut(head, []byte("\r\n"))
	if !ok {
		return nil, false
	}
	method, line, ok1 := bytes.Cut(line, []byte(" "))
	target, proto, ok2 := bytes.Cut(line, []byte(" "))
	if !ok1 || !ok2 || string(method) != http.MethodGet {
		return nil, false
	}
	var minor int
	switch string(proto) {
	case "HTTP/1.1":
		minor = 1
	case "HTTP/1.0":
	default:
		return nil, false
	}
	if len(target) == 0 || target[0] != '/' || !strings.HasPrefix(string(target), c.lot.prefix) {
		return nil, false
	}
	u, err := url.ParseRequestURI(string(target))
	if err != nil {
		return nil, false
	}
	h := make(http.Header, bytes.Count(rest, []byte("\r\n")))
	var host string
	hosts := 0
	for len(rest) > 0 {
		var hl []byte
		hl, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		k, v, ok := bytes.Cut(hl, []byte(":"))
		if !ok || !validKey(k) || !validValue(v) {
			return nil, false
		}
		key := commonKey(k)
		if key == "" {
			key = textproto.CanonicalMIMEHeaderKey(string(k))
		}
		val := strings.Trim(string(v), " \t")
		switch key {
		case "Host":
			host = val
			hosts++
		case "Transfer-Encoding", "Upgrade", "Expect":
			return nil, false
		case "Content-Length":
			if val != "0" {
				return nil, false
			}
		}
		h[key] = append(h[key], val)
	}
	if hosts > 1 || minor == 1 && hosts == 0 {
		return nil, false
	}
	req := &http.Request{
		Method: http.MethodGet, URL: u, Proto: string(proto), ProtoMajor: 1, ProtoMinor: minor,
		Header: h, Body: http.NoBody, Host: host, RemoteAddr: c.remote, RequestURI: string(target),
	}
	req.Close = hasToken(h["Connection"], "close") || minor == 0 && !hasToken(h["Connection"], "keep-alive")
	return req, true
}

// hasToken reports whether the comma-separated header values name token,
// as net/http reads Connection.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// commonKeys are the header names browsers and clients send on every
// poll, so that reading them allocates nothing.
var commonKeys = func() map[string]string {
	m := make(map[string]string)
	for _, k := range []string{"Host", "User-Agent", "Accept", "Accept-Encoding", "Accept-Language",
		"Connection", "Cache-Control", "Pragma", "Referer", "Origin", "Cookie", "Authorization",
		"Sec-Fetch-Site", "Sec-Fetch-Mode", "Sec-Fetch-Dest", "Sec-Ch-Ua", "Sec-Ch-Ua-Mobile",
		"Sec-Ch-Ua-Platform", "Priority", "Dnt", "Content-Length", "X-Forwarded-For"} {
		m[k] = k
		m[strings.ToLower(k)] = k
	}
	return m
}()

// commonKey returns the canonical form of k when it is a common header
// name in canonical or lower case, and "" otherwise.
func commonKey(k []byte) string { return commonKeys[string(k)] }

// validKey accepts an HTTP token.
func validKey(k []byte) bool {
	if len(k) == 0 {
		return false
	}
	for _, b := range k {
		if b <= ' ' || b >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, b) >= 0 {
			return false
		}
	}
	return true
}

// validValue refuses control characters other than tab.
func validValue(v []byte) bool {
	for _, b := range v {
		if b < ' ' && b != '\t' || b == 0x7f {
			return false
		}
	}
	return true
}

// laneWriter is the http.ResponseWriter of a lane request: it keeps the
// answer whole (lane answers are small API replies) and writes it in one go.
type laneWriter struct {
	c      *conn
	req    *http.Request
	h      http.Header
	status int
	body   []byte
	spot   *Spot
}

func (w *laneWriter) Header() http.Header { return w.h }

func (w *laneWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *laneWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.body = append(w.body, b...)
	return len(b), nil
}

// response renders the answer.
func (w *laneWriter) response(closing bool) [][]byte {
	w.WriteHeader(http.StatusOK)
	head := make([]byte, 0, 256)
	head = append(head, "HTTP/1.1 "...)
	head = strconv.AppendInt(head, int64(w.status), 10)
	head = append(head, ' ')
	head = append(head, http.StatusText(w.status)...)
	head = append(head, "\r\n"...)
	head = appendHeaders(head, w.h)
	body := w.body
	if w.status == http.StatusNoContent || w.status == http.StatusNotModified || w.status < 200 {
		body = nil
	} else {
		head = append(head, "Content-Length: "...)
		head = strconv.AppendInt(head, int64(len(body)), 10)
		head = append(head, "\r\n"...)
	}
	head = append(head, "Date: "...)
	head = append(head, httpDate()...)
	head = append(head, "\r\n"...)
	if closing {
		head = append(head, "Connection: close\r\n"...)
	}
	head = append(head, "\r\n"...)
	return [][]byte{head, body}
}
