package loadkit

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func read(t *testing.T, raw string) (Response, error) {
	t.Helper()
	var resp Response
	_, err := ReadResponse(bufio.NewReader(strings.NewReader(raw)), &resp, nil)
	return resp, err
}

func TestReadResponseShapes(t *testing.T) {
	resp, err := read(t, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nlast-modified: Mon, 30 Nov 2026 09:00:00 GMT\r\nEtag: 3\r\nContent-Length: 5\r\n\r\nhello")
	require.NoError(t, err)
	require.Equal(t, 200, resp.Status)
	require.Equal(t, "hello", string(resp.Body))
	require.Equal(t, "Mon, 30 Nov 2026 09:00:00 GMT", resp.LastModified)
	require.Equal(t, "3", resp.ETag)
	require.False(t, resp.Close)

	resp, err = read(t, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nabcd\r\n3\r\nefg\r\n0\r\nTrailer: x\r\n\r\n")
	require.NoError(t, err)
	require.Equal(t, "abcdefg", string(resp.Body))

	resp, err = read(t, "HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n")
	require.NoError(t, err)
	require.Equal(t, 304, resp.Status)
	require.Empty(t, resp.Body)
	require.True(t, resp.Close)

	resp, err = read(t, "HTTP/1.0 200 OK\r\n\r\nto the end")
	require.NoError(t, err)
	require.Equal(t, "to the end", string(resp.Body))
	require.True(t, resp.Close)

	for _, bad := range []string{
		"",
		"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort",
		"HTTP/1.1 abc OK\r\n\r\n",
		"SMTP ready\r\n",
		"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n0\r\n\r\n",
	} {
		_, err := read(t, bad)
		require.Error(t, err, "%q", bad)
	}
}

// TestConnKeepsAlive drives net/http's server: several requests share one
// connection, large answers come chunked, and Connection: close redials.
func TestConnKeepsAlive(t *testing.T) {
	var conns []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conns = append(conns, r.RemoteAddr)
		if r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
		}
		fmt.Fprint(w, strings.Repeat("x", 10000)) // over net/http's 2 KB: chunked
	}))
	defer srv.Close()
	ctx := context.Background()
	addr := strings.TrimPrefix(srv.URL, "http://")
	c, err := DialLoopback(ctx, addr)
	require.NoError(t, err)
	defer c.Close()
	var resp Response
	for _, path := range []string{"/a", "/b", "/close", "/c"} {
		require.NoError(t, c.Do(ctx, []byte("GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"), &resp))
		require.Equal(t, 200, resp.Status)
		require.Len(t, resp.Body, 10000)
	}
	require.Equal(t, conns[0], conns[1])
	require.Equal(t, conns[0], conns[2])
	require.NotEqual(t, conns[2], conns[3], "a new connection after Connection: close")

	_, err = DialLoopback(ctx, "192.0.2.1:80")
	require.ErrorContains(t, err, "not a loopback address")
}

func TestLoopbackOnly(t *testing.T) {
	ctx := context.Background()
	for _, ok := range []string{"http://127.0.0.1:8080", "http://127.9.9.9:1/", "http://[::1]:8080", "http://localhost:8080"} {
		_, _, err := LoopbackTarget(ctx, ok)
		require.NoError(t, err, ok)
	}
	for _, bad := range []string{"http://10.0.0.1:8080", "http://192.168.1.1", "ftp://127.0.0.1", "127.0.0.1:8080", "http://[2001:db8::1]:80"} {
		_, _, err := LoopbackTarget(ctx, bad)
		require.Error(t, err, bad)
	}
}
