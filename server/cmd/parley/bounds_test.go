package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parley-chat/parley/server/boltstore"
	"github.com/parley-chat/parley/shared"
)

// TestBoltRetentionRunsFromTheStart: a file holding 30 messages in a room
// is trimmed to -retain-messages by the server's own upkeep, and a reader
// from the start gets the oldest kept with a gap.
func TestBoltRetentionRunsFromTheStart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "p.db")
	bs, err := boltstore.Open(path)
	require.NoError(t, err)
	st, err := bs.LoadRoom(ctx, "lobby")
	require.NoError(t, err)
	for i := range 30 {
		_, err := bs.Append(ctx, []shared.Message{{Room: "lobby", Kind: shared.KindText, Author: "a", Text: fmt.Sprint(i), SentAt: time.Now()}})
		require.NoError(t, err)
	}
	require.NoError(t, bs.Close())

	// -history 5: the room's memory holds the newest five, so a read from
	// the start goes to the file.
	p := startInProcess(t, []string{"-addr", "127.0.0.1:0", "-data", path, "-web", dir, "-history", "5", "-retain-messages", "10"}, nil)
	base := "http://" + p.addr
	waitHealthy(t, base)
	hc := newClient(t)
	zero, wait := uint64(0), 0
	var got shared.PollResponse
	require.Eventually(t, func() bool {
		got, _, err = poll(ctx, hc, base, "lobby", shared.PollRequest{After: &zero, Epoch: st.Epoch, Wait: &wait})
		return err == nil && len(got.Messages) > 0 && got.Messages[0].Seq == 21
	}, 5*time.Second, 20*time.Millisecond, "last answer: %+v, %v", got, err)
	require.True(t, got.Gap)
	require.Len(t, got.Messages, 10)
	hc.CloseIdleConnections()
	p.stop(t)
}

// rawPoll writes a poll on c and reads its answer's status; 0 with the
// error when the connection is closed instead.
func rawPoll(t *testing.T, c net.Conn, br *bufio.Reader, query string) (int, error) {
	t.Helper()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	if _, err := fmt.Fprintf(c, "GET /api/rooms/lobby/messages?%s HTTP/1.1\r\nHost: x\r\n\r\n", query); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// metric reads one value from the metrics address.
func metric(t *testing.T, addr, name string) float64 {
	t.Helper()
	v, err := gauge(context.Background(), "http://"+addr, name)
	require.NoError(t, err)
	return v
}

// TestConnCapCountsParkedPolls: with -max-conns-per-addr 3, three held
// polls (parked: their connections hijacked and kept by the park) use up
// the address; a fourth connection is closed at once; when a client leaves
// a parked poll, the park's close gives the count back. Connections served
// by the park's lane are counted ones too.
func TestConnCapCountsParkedPolls(t *testing.T) {
	dir := t.TempDir()
	p := startInProcess(t, []string{"-addr", "127.0.0.1:0", "-store", "memory", "-web", dir, "-max-conns-per-addr", "3", "-metrics-addr", "127.0.0.1:0"}, nil)
	var maddr string
	for line := range strings.Lines(p.log.String()) {
		if strings.Contains(line, `msg="metrics listening"`) {
			_, maddr, _ = strings.Cut(strings.TrimSpace(line), "addr=")
		}
	}
	require.NotEmpty(t, maddr)

	open := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", p.addr)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c, bufio.NewReader(c)
	}
	c0, br0 := open()
	status, err := rawPoll(t, c0, br0, "wait=0")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	require.NoError(t, c0.Close())
	require.Eventually(t, func() bool { return metric(t, maddr, "parley_connections_open") == 0 }, 5*time.Second, 10*time.Millisecond)

	type held struct {
		c  net.Conn
		br *bufio.Reader
	}
	var polls []held
	for range 3 {
		c, br := open()
		require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
		_, err := fmt.Fprint(c, "GET /api/rooms/lobby/messages?after=0&wait=1 HTTP/1.1\r\nHost: x\r\n\r\n")
		require.NoError(t, err)
		polls = append(polls, held{c, br})
	}
	require.Eventually(t, func() bool { return metric(t, maddr, "parley_parked_polls") == 3 }, 5*time.Second, 10*time.Millisecond)

	extra, brx := open()
	start := time.Now()
	_, err = rawPoll(t, extra, brx, "wait=0")
	require.Error(t, err, "a fourth connection from the address is closed")
	require.Less(t, time.Since(start), 2*time.Second)
	require.EqualValues(t, 1, metric(t, maddr, "parley_connections_refused_total"))

	// The held polls time out and are answered; their next request is read
	// by the park's lane on the same counted connection.
	for _, h := range polls {
		resp, err := http.ReadResponse(h.br, nil)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		status, err := rawPoll(t, h.c, h.br, "wait=0")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status)
	}
	require.Positive(t, metric(t, maddr, "parley_lane_requests_total"), "counted connections keep the lane")

	// A client leaving gives its connection back.
	_, err = fmt.Fprint(polls[0].c, "GET /api/rooms/lobby/messages?after=0&wait=30 HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return metric(t, maddr, "parley_parked_polls") == 1 }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, polls[0].c.Close())
	require.Eventually(t, func() bool { return metric(t, maddr, "parley_connections_open") == 2 }, 5*time.Second, 10*time.Millisecond)
	again, bra := open()
	status, err = rawPoll(t, again, bra, "wait=0")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)

	// A request the lane does not serve goes back to net/http with the
	// bytes read so far; net/http's close is counted too.
	require.NoError(t, polls[1].c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = fmt.Fprint(polls[1].c, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(polls[1].br, nil)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Eventually(t, func() bool { return metric(t, maddr, "parley_connections_open") == 2 }, 5*time.Second, 10*time.Millisecond,
		"net/http closed the handed-back connection")
	for _, h := range polls {
		_ = h.c.Close()
	}
	_ = again.Close()
	require.Eventually(t, func() bool { return metric(t, maddr, "parley_connections_open") == 0 }, 5*time.Second, 10*time.Millisecond)
	p.stop(t)
}
