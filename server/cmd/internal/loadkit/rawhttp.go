package loadkit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// Conn is one keep-alive HTTP/1.1 connection driven by hand: the caller
// writes a whole request and reads its answer. It costs one socket, a 4 KiB
// read buffer and a body buffer that grows to the largest answer, and no
// goroutine of its own, so ten thousand of them stay cheap for the load
// generator. It understands what Parley and nginx answer: Content-Length or
// chunked bodies, and Connection: close.
type Conn struct {
	addr string
	// mu guards nc and closed: Close may come from another goroutine, to
	// end a Read that waits.
	mu     sync.Mutex
	nc     net.Conn
	closed bool
	br     *bufio.Reader
	body   []byte
}

// Response is one answer. Body and the header strings stay valid until the
// next Do on the same Conn.
type Response struct {
	Status int
	// The validators an Nchan long-poll subscriber sends back.
	LastModified, ETag string
	Body               []byte
	// Close is set when the server will close the connection after this
	// answer; the next Do dials again.
	Close bool
}

// DialLoopback connects to addr ("127.0.0.1:port"), which must be a loopback
// address.
func DialLoopback(ctx context.Context, addr string) (*Conn, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", addr, err)
	}
	if !ap.Addr().IsLoopback() {
		return nil, fmt.Errorf("%s is not a loopback address", addr)
	}
	c := &Conn{addr: addr}
	return c, c.dial(ctx)
}

func (c *Conn) dial(ctx context.Context) error {
	d := net.Dialer{Timeout: 10 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		nc.Close()
		return net.ErrClosed
	}
	c.nc = nc
	if c.br == nil {
		c.br = bufio.NewReaderSize(nc, 4096)
	} else {
		c.br.Reset(nc)
	}
	return nil
}

// Close closes the connection for good; a Write or Read waiting on it
// returns an error. It is safe to call from any goroutine.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.nc == nil {
		return nil
	}
	return c.nc.Close()
}

// drop closes the connection after a failure or a Connection: close; the
// next Write dials again.
func (c *Conn) drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nc != nil {
		c.nc.Close()
		c.nc = nil
	}
}

func (c *Conn) conn() net.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nc
}

// Write sends a whole request, redialling first if the previous answer
// closed the connection.
func (c *Conn) Write(ctx context.Context, req []byte) error {
	nc := c.conn()
	if nc == nil {
		if err := c.dial(ctx); err != nil {
			return err
		}
		nc = c.conn()
	}
	if _, err := nc.Write(req); err != nil {
		c.drop()
		return err
	}
	return nil
}

// Read reads the answer to the request last written. An error leaves the
// connection closed; the next Write dials again.
func (c *Conn) Read(resp *Response) error {
	var err error
	c.body, err = ReadResponse(c.br, resp, c.body[:0])
	if err != nil || resp.Close {
		c.drop()
	}
	return err
}

// Do writes req and reads its answer.
func (c *Conn) Do(ctx context.Context, req []byte, resp *Response) error {
	if err := c.Write(ctx, req); err != nil {
		return err
	}
	return c.Read(resp)
}

// ReadResponse reads one HTTP/1.1 answer from br into resp, its body
// appended to buf (which it returns, grown). It keeps the status, the body,
// Last-Modified, ETag and whether the connection closes, and skips every
// other header.
func ReadResponse(br *bufio.Reader, resp *Response, buf []byte) ([]byte, error) {
	*resp = Response{}
	line, err := readLine(br)
	if err != nil {
		return buf, err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return buf, fmt.Errorf("bad status line %q", line)
	}
	resp.Status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return buf, fmt.Errorf("bad status line %q", line)
	}
	resp.Close = line[7] == '0' // HTTP/1.0 closes unless told otherwise
	length, chunked := -1, false
	for {
		line, err := readLine(br)
		if err != nil {
			return buf, err
		}
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return buf, fmt.Errorf("bad header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiEqualFold(name, "content-length"):
			length, err = strconv.Atoi(string(value))
			if err != nil || length < 0 {
				return buf, fmt.Errorf("bad Content-Length %q", value)
			}
		case asciiEqualFold(name, "transfer-encoding"):
			chunked = asciiEqualFold(value, "chunked")
		case asciiEqualFold(name, "connection"):
			resp.Close = asciiEqualFold(value, "close")
		case asciiEqualFold(name, "last-modified"):
			resp.LastModified = string(value)
		case asciiEqualFold(name, "etag"):
			resp.ETag = string(value)
		}
	}
	switch {
	case chunked:
		buf, err = readChunked(br, buf)
	case length >= 0:
		buf, err = readN(br, buf, length)
	case resp.Status == 204 || resp.Status == 304 || resp.Status/100 == 1:
	default:
		// No length: the body runs to the end of the connection.
		resp.Close = true
		var b bytes.Buffer
		_, err = b.ReadFrom(br)
		buf = append(buf, b.Bytes()...)
	}
	resp.Body = buf
	return buf, err
}

const maxBody = 16 << 20

func readN(br *bufio.Reader, buf []byte, n int) ([]byte, error) {
	if n > maxBody {
		return buf, fmt.Errorf("body of %d bytes is too large", n)
	}
	start := len(buf)
	buf = growTo(buf, start+n)
	_, err := io.ReadFull(br, buf[start:])
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return buf, err
}

func readChunked(br *bufio.Reader, buf []byte) ([]byte, error) {
	for {
		line, err := readLine(br)
		if err != nil {
			return buf, err
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		n, err := strconv.ParseUint(string(bytes.TrimSpace(line)), 16, 32)
		if err != nil || len(buf)+int(n) > maxBody {
			return buf, fmt.Errorf("bad chunk size %q", line)
		}
		if n == 0 {
			// Trailers, then the blank line.
			for {
				line, err := readLine(br)
				if err != nil || len(line) == 0 {
					return buf, err
				}
			}
		}
		if buf, err = readN(br, buf, int(n)); err != nil {
			return buf, err
		}
		if line, err := readLine(br); err != nil || len(line) != 0 {
			return buf, fmt.Errorf("chunk not followed by CRLF")
		}
	}
}

// readLine returns one line without its CRLF; it is valid until the next
// read from br.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, errors.New("header line too long")
		}
		if errors.Is(err, io.EOF) && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return bytes.TrimRight(line, "\r\n"), nil
}

func growTo(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	nb := make([]byte, n, max(n, 2*cap(b)))
	copy(nb, b)
	return nb
}

// asciiEqualFold reports whether b equals the lower-case ASCII s, ignoring case.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
