package park_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/parley-chat/parley/server/park"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// rig serves a handler that parks every GET /park and answers it when the
// test says, plus GET /plain answered as usual.
type rig struct {
	lot    *park.Lot
	url    string
	spots  chan *park.Spot
	gone   chan struct{}
	client *http.Client
}

type goneFunc func()

func (f goneFunc) Gone() { f() }

func newRig(t *testing.T) *rig {
	lot, err := park.New(park.Options{})
	require.NoError(t, err)
	r := &rig{lot: lot, spots: make(chan *park.Spot, 16), gone: make(chan struct{}, 16)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /park", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Evil", "a\r\nInjected: yes")
		spot, ok := lot.Park(w, req, goneFunc(func() { r.gone <- struct{}{} }))
		if !ok {
			_, _ = io.WriteString(w, "not parked")
			return
		}
		r.spots <- spot
	})
	mux.HandleFunc("GET /plain", func(w http.ResponseWriter, req *http.Request) { _, _ = io.WriteString(w, "plain") })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lot.Listener(ln))
	}()
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	r.client = &http.Client{Transport: tr}
	r.url = "http://" + ln.Addr().String()
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
		require.NoError(t, lot.Close())
	})
	return r
}

func (r *rig) spot(t *testing.T) *park.Spot {
	t.Helper()
	select {
	case s := <-r.spots:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("nothing parked")
		return nil
	}
}

func TestParkedAnswerKeepsTheConnection(t *testing.T) {
	r := newRig(t)
	var reused []bool
	var mu sync.Mutex
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		mu.Lock()
		reused = append(reused, i.Reused)
		mu.Unlock()
	}}
	for i := range 3 {
		type result struct {
			resp *http.Response
			body string
			err  error
		}
		got := make(chan result, 1)
		go func() {
			req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", r.url+"/park", nil)
			resp, err := r.client.Do(req)
			if err != nil {
				got <- result{err: err}
				return
			}
			b, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			got <- result{resp: resp, body: string(b), err: err}
		}()
		s := r.spot(t)
		require.Equal(t, 1, r.lot.Len())
		require.True(t, s.Reply([]byte("answer")))
		require.False(t, s.Reply([]byte("again")), "a spot answers once")
		res := <-got
		require.NoError(t, res.err)
		require.Equal(t, http.StatusOK, res.resp.StatusCode)
		require.Equal(t, "answer", res.body)
		require.Equal(t, "text/plain", res.resp.Header.Get("Content-Type"))
		require.Empty(t, res.resp.Header.Get("Injected"), "header values cannot add headers")
		require.NotEmpty(t, res.resp.Header.Get("Date"))
		require.Zero(t, r.lot.Len())
		_ = i
	}
	// The same connection went on serving requests after each answer.
	mu.Lock()
	require.Equal(t, []bool{false, true, true}, reused)
	mu.Unlock()
	resp, err := r.client.Get(r.url + "/plain")
	require.NoError(t, err)
	_ = resp.Body.Close()
}

func TestClientLeavingIsNoticed(t *testing.T) {
	r := newRig(t)
	c, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://"))
	require.NoError(t, err)
	_, err = io.WriteString(c, "GET /park HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	s := r.spot(t)
	require.NoError(t, c.Close())
	select {
	case <-r.gone:
	case <-time.After(10 * time.Second):
		t.Fatal("a client that closed its connection was not noticed")
	}
	require.False(t, s.Reply([]byte("late")), "nobody to answer")
	require.Zero(t, r.lot.Len())
}

func TestConnectionCloseIsHonoured(t *testing.T) {
	r := newRig(t)
	c, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://"))
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "GET /park HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	require.NoError(t, err)
	require.True(t, r.spot(t).Reply([]byte("bye")))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	require.True(t, resp.Close)
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, "bye", string(b))
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF, "the server closed the connection")
}

func TestPipelinedRequestIsNotLost(t *testing.T) {
	r := newRig(t)
	c, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://"))
	require.NoError(t, err)
	defer c.Close()
	// Two requests in one write: the second sits in net/http's buffer when
	// the first is parked. Its connection must close after the answer
	// rather than drop the second silently and hang the client.
	_, err = io.WriteString(c, "GET /park HTTP/1.1\r\nHost: x\r\n\r\nGET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	require.True(t, r.spot(t).Reply([]byte("first")))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.True(t, resp.Close, "the client is told to reconnect for the rest")
	_ = resp.Body.Close()
}

func TestHeadIsNotParked(t *testing.T) {
	r := newRig(t)
	resp, err := r.client.Head(r.url + "/park")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Zero(t, r.lot.Len())
}

func TestCloseReleasesParkedConnections(t *testing.T) {
	lot, err := park.New(park.Options{})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	parked := make(chan struct{}, 1)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if _, ok := lot.Park(w, req, goneFunc(func() {})); ok {
			parked <- struct{}{}
		}
	}), ReadHeaderTimeout: time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lot.Listener(ln))
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	<-parked
	require.NoError(t, srv.Shutdown(context.Background()))
	<-done
	require.NoError(t, lot.Close())
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	require.ErrorIs(t, err, io.EOF)
}

func TestShutdownAnswersCloseTheirConnections(t *testing.T) {
	r := newRig(t)
	c, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://"))
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "GET /park HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	s := r.spot(t)
	r.lot.Shutdown()
	require.True(t, s.Reply([]byte("last")))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	require.True(t, resp.Close, "a stopping server tells the client to reconnect")
	_ = resp.Body.Close()
}

// TestLargeAnswerToASlowReaderDoesNotBlock: Reply runs on goroutines shared
// by every waiter, so an answer the socket cannot take at once must finish
// elsewhere, and still arrive whole.
func TestLargeAnswerToASlowReaderDoesNotBlock(t *testing.T) {
	r := newRig(t)
	c, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://"))
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "GET /park HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	s := r.spot(t)
	body := []byte(strings.Repeat("x", 32<<20))
	start := time.Now()
	require.True(t, s.Reply(body))
	require.Less(t, time.Since(start), 2*time.Second, "Reply waited for the client")
	time.Sleep(100 * time.Millisecond) // the client is slow to read
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	got, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Len(t, got, len(body))
	// The connection goes on serving.
	_, err = io.WriteString(c, "GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
}
