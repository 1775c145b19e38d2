package park_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
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

func newRig(t *testing.T) *rig { return newRigWith(t, park.Options{}, false) }

// newLaneRig is newRig with the lane on: re-polls are read by the Lot.
func newLaneRig(t *testing.T) *rig { return newRigWith(t, park.Options{}, true) }

func newRigWith(t *testing.T, opt park.Options, lane bool) *rig {
	lot, err := park.New(opt)
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
	mux.HandleFunc("POST /plain", func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		_, _ = io.WriteString(w, "posted "+string(b))
	})
	if lane {
		lot.Handle("/", mux)
	}
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
	t.Run("net/http", func(t *testing.T) { testKeepsTheConnection(t, newRig(t)) })
	t.Run("lane", func(t *testing.T) { testKeepsTheConnection(t, newLaneRig(t)) })
}

func testKeepsTheConnection(t *testing.T, r *rig) {
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
	t.Run("net/http", func(t *testing.T) { testLeaving(t, newRig(t)) })
	t.Run("lane", func(t *testing.T) { testLeaving(t, newLaneRig(t)) })
}

func testLeaving(t *testing.T, r *rig) {
	rc := dialRaw(t, r)
	rc.send("GET /park HTTP/1.1\r\nHost: x\r\n\r\n")
	s := r.spot(t)
	require.NoError(t, rc.c.Close())
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
	rc := dialRaw(t, r)
	rc.send("GET /park HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	require.True(t, r.spot(t).Reply([]byte("bye")))
	resp, body := rc.read()
	require.True(t, resp.Close)
	require.Equal(t, "bye", body)
	rc.requireClosed()
}

func TestPipelinedRequestIsNotLost(t *testing.T) {
	r := newRig(t)
	rc := dialRaw(t, r)
	// Two requests in one write: the second sits in net/http's buffer when
	// the first is parked. Its connection must close after the answer
	// rather than drop the second silently and hang the client.
	rc.send("GET /park HTTP/1.1\r\nHost: x\r\n\r\nGET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
	require.True(t, r.spot(t).Reply([]byte("first")))
	resp, _ := rc.read()
	require.True(t, resp.Close, "the client is told to reconnect for the rest")
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
	rc := dialRaw(t, r)
	rc.send("GET /park HTTP/1.1\r\nHost: x\r\n\r\n")
	s := r.spot(t)
	r.lot.Shutdown()
	require.True(t, s.Reply([]byte("last")))
	resp, _ := rc.read()
	require.True(t, resp.Close, "a stopping server tells the client to reconnect")
}

// TestLargeAnswerToASlowReaderDoesNotBlock: Reply runs on goroutines shared
// by every waiter, so an answer the socket cannot take at once must finish
// elsewhere, and still arrive whole.
func TestLargeAnswerToASlowReaderDoesNotBlock(t *testing.T) {
	r := newRig(t)
	rc := dialRaw(t, r)
	rc.send("GET /park HTTP/1.1\r\nHost: x\r\n\r\n")
	s := r.spot(t)
	body := strings.Repeat("x", 32<<20)
	start := time.Now()
	require.True(t, s.Reply([]byte(body)))
	require.Less(t, time.Since(start), 2*time.Second, "Reply waited for the client")
	time.Sleep(100 * time.Millisecond) // the client is slow to read
	_, got := rc.read()
	require.Len(t, got, len(body))
	// The connection goes on serving, once the slow write is done.
	rc.send("GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
	_, got = rc.read()
	require.Equal(t, "plain", got)
}

// rawClient speaks HTTP/1.1 over one connection, to see exactly what the
// lane does with it.
type rawClient struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, r *rig) *rawClient {
	c, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return &rawClient{t: t, c: c, br: bufio.NewReader(c)}
}

func (rc *rawClient) send(s string) {
	_, err := io.WriteString(rc.c, s)
	require.NoError(rc.t, err)
}

// requireClosed checks that the server closed the connection.
func (rc *rawClient) requireClosed() {
	rc.t.Helper()
	_ = rc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := rc.br.ReadByte()
	require.ErrorIs(rc.t, err, io.EOF, "closed by the server")
}

func (rc *rawClient) read() (*http.Response, string) {
	_ = rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(rc.br, nil)
	require.NoError(rc.t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(rc.t, err)
	return resp, string(b)
}

// TestLaneServesWhatFollowsOnTheConnection: after a parked answer the Lot
// reads the next request itself; a GET that parks again stays on the lane,
// and anything else (a POST with a body here) goes to net/http with the
// bytes already read, so nothing is lost.
func TestLaneServesWhatFollowsOnTheConnection(t *testing.T) {
	r := newLaneRig(t)
	rc := dialRaw(t, r)
	for i := range 3 {
		rc.send("GET /park HTTP/1.1\r\nHost: x\r\n\r\n")
		require.True(t, r.spot(t).Reply(fmt.Appendf(nil, "answer %d", i)))
		resp, body := rc.read()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, fmt.Sprintf("answer %d", i), body)
		require.Equal(t, "text/plain", resp.Header.Get("Content-Type"))
	}
	require.EqualValues(t, 2, r.lot.Stats().Served, "the 2nd and 3rd polls were read on the lane")
	rc.send("GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, body := rc.read()
	require.Equal(t, "plain", body, "a GET that does not park is answered on the lane")
	require.EqualValues(t, 3, r.lot.Stats().Served)
	require.Zero(t, r.lot.Stats().Handed)
	require.NotEmpty(t, resp.Header.Get("Date"))
	rc.send("POST /plain HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
	_, body = rc.read()
	require.Equal(t, "posted hello", body)
	require.EqualValues(t, 1, r.lot.Stats().Handed, "the POST went to net/http")
	// Back on net/http, the connection still parks and answers.
	rc.send("GET /park HTTP/1.1\r\nHost: x\r\n\r\n")
	require.True(t, r.spot(t).Reply([]byte("again")))
	_, body = rc.read()
	require.Equal(t, "again", body)
}

// TestLanePipelinedRequestsAreAnswered: a request that arrives while a poll
// is parked on its connection is served once the poll is answered.
func TestLanePipelinedRequestsAreAnswered(t *testing.T) {
	r := newLaneRig(t)
	rc := dialRaw(t, r)
	rc.send("GET /park HTTP/1.1\r\nHost: x\r\n\r\n")
	require.True(t, r.spot(t).Reply([]byte("one")))
	_, body := rc.read()
	require.Equal(t, "one", body)
	rc.send("GET /park HTTP/1.1\r\nHost: x\r\n\r\n")
	s := r.spot(t)
	rc.send("GET /plain HTTP/1.1\r\nHost: x\r\n\r\n") // arrives while parked
	time.Sleep(50 * time.Millisecond)
	require.True(t, s.Reply([]byte("two")))
	_, body = rc.read()
	require.Equal(t, "two", body)
	_, body = rc.read()
	require.Equal(t, "plain", body)
}

// TestLaneRefusesWhatItDoesNotServe: malformed or unusual requests are left
// to net/http, which answers them as it always does.
func TestLaneRefusesWhatItDoesNotServe(t *testing.T) {
	for name, req := range map[string]string{
		"no host":           "GET /plain HTTP/1.1\r\n\r\n",
		"two hosts":         "GET /plain HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"bad header":        "GET /plain HTTP/1.1\r\nHost: x\r\nBad Key: v\r\n\r\n",
		"chunked body":      "GET /plain HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"absolute target":   "GET http://x/plain HTTP/1.1\r\nHost: x\r\n\r\n",
		"unknown version":   "GET /plain HTTP/1.2\r\nHost: x\r\n\r\n",
		"long headers":      "GET /plain HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 5000) + "\r\n\r\n",
		"bare lf in header": "GET /plain HTTP/1.1\r\nHost: x\r\nX: a\nb\r\n\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			r := newLaneRig(t)
			rc := dialRaw(t, r)
			rc.send("GET /park HTTP/1.1\r\nHost: x\r\n\r\n")
			require.True(t, r.spot(t).Reply([]byte("ok")))
			_, _ = rc.read()
			rc.send(req)
			// net/http's answer, whatever it is, and never a hang.
			defer func() { require.EqualValues(t, 1, r.lot.Stats().Handed) }()
			_ = rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(rc.br, nil)
			if err == nil {
				_ = resp.Body.Close()
				require.NotZero(t, resp.StatusCode)
			} else {
				require.NotErrorIs(t, err, os.ErrDeadlineExceeded)
			}
		})
	}
}

func TestLaneClosesSlowAndIdleClients(t *testing.T) {
	r := newRigWith(t, park.Options{IdleTimeout: 300 * time.Millisecond, HeaderTimeout: 300 * time.Millisecond}, true)
	idle, slow := dialRaw(t, r), dialRaw(t, r)
	for _, rc := range []*rawClient{idle, slow} {
		rc.send("GET /park HTTP/1.1\r\nHost: x\r\n\r\n")
		require.True(t, r.spot(t).Reply([]byte("ok")))
		_, _ = rc.read()
	}
	slow.send("GET /plain HTTP/1.1\r\n") // and never the rest
	idle.requireClosed()
	slow.requireClosed()
}

func TestLaneShutdownClosesIdleConnections(t *testing.T) {
	r := newLaneRig(t)
	rc := dialRaw(t, r)
	rc.send("GET /park HTTP/1.1\r\nHost: x\r\n\r\n")
	require.True(t, r.spot(t).Reply([]byte("ok")))
	_, _ = rc.read()
	time.Sleep(20 * time.Millisecond) // idle now
	r.lot.Shutdown()
	rc.requireClosed()
}
