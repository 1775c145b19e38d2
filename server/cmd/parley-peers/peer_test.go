package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parley-chat/parley/server/cmd/internal/loadkit"
)

func TestMessageIndex(t *testing.T) {
	k, err := messageIndex("r1", messageText("r1", 42))
	require.NoError(t, err)
	require.Equal(t, 42, k)
	k, err = messageIndexBytes("r1", []byte(messageText("r1", 1907)))
	require.NoError(t, err)
	require.Equal(t, 1907, k)
	for _, bad := range []string{"peers r2 1", "peers r1 x", "peers r1 -1", "hello", "peers r1 ", "peers r1 12345678901234567890", "peers r11 1"} {
		_, err := messageIndex("r1", bad)
		require.Error(t, err, bad)
		_, err = messageIndexBytes("r1", []byte(bad))
		require.Error(t, err, bad)
	}
}

func TestParleyPoll(t *testing.T) {
	p := &parleyPeer{host: "127.0.0.1:1", room: "peers-r1", token: "tok", run: "r1"}
	var cur cursor
	require.Equal(t, "GET /api/rooms/peers-r1/messages?after=0&wait=25&limit=100 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n",
		string(p.pollRequest(nil, &cur)))

	var got []int
	resp := &loadkit.Response{Status: 200, Body: []byte(`{"room":"peers-r1","epoch":"e1","messages":[` +
		`{"seq":1,"room":"peers-r1","kind":"text","author":"a","text":"peers r1 0","sent_at":"2026-11-30T09:00:00Z"},` +
		`{"seq":2,"text":"peers r1 1"}],"next":2,"gap":false,"reset":false}`)}
	require.NoError(t, p.readPoll(resp, &cur, func(k int) { got = append(got, k) }))
	require.Equal(t, []int{0, 1}, got)
	require.Equal(t, [2]any{uint64(2), "e1"}, [2]any{cur.seq, cur.epoch})
	require.Equal(t, "GET /api/rooms/peers-r1/messages?after=2&epoch=e1&wait=25&limit=100 HTTP/1.1\r\nHost: 127.0.0.1:1\r\n\r\n",
		string(p.pollRequest(nil, &cur)))

	// An empty answer (the wait ran out) keeps the cursor.
	require.NoError(t, p.readPoll(&loadkit.Response{Status: 200, Body: []byte(`{"epoch":"e1","messages":[],"next":2}`)}, &cur, nil))
	require.Equal(t, [2]any{uint64(2), "e1"}, [2]any{cur.seq, cur.epoch})
	require.Zero(t, p.slowReads.Load())

	// An answer out of the plain form is read by encoding/json, alike.
	c := cur
	got = nil
	require.NoError(t, p.readPoll(&loadkit.Response{Status: 200, Body: []byte(`{"epoch":"e1","messages":[{"seq":3,"text":"peers r1 \u0032"}],"next":3}`)},
		&c, func(k int) { got = append(got, k) }))
	require.Equal(t, []int{2}, got)
	require.Equal(t, uint64(3), c.seq)
	require.EqualValues(t, 1, p.slowReads.Load())

	for _, bad := range []string{
		`{"epoch":"e2","messages":[],"next":0,"reset":true}`,                 // the room's log was lost
		`{"epoch":"e1","messages":[{"seq":2,"text":"peers r1 1"}],"next":2}`, // seq again
		`{"epoch":"e1","messages":[],"next":1}`,                              // next went back
		`{"epoch":"e1","messages":[{"seq":3,"text":"other"}],"next":3}`,
		`not json`,
		`{"epoch":"e1","messages":[{"seq":3,"text":"peers r1 \u0078"}],"next":3}`, // "x", read slowly
	} {
		c := cur
		require.Error(t, p.readPoll(&loadkit.Response{Status: 200, Body: []byte(bad)}, &c, func(int) {}), bad)
	}
	require.Error(t, p.readPoll(&loadkit.Response{Status: 503, Body: []byte(`{}`)}, &cur, nil))

	req := string(p.sendRequest(nil, 7))
	require.Equal(t, "POST /api/rooms/peers-r1/messages HTTP/1.1\r\nHost: 127.0.0.1:1\r\nAuthorization: Bearer tok\r\n"+
		"Content-Type: application/json\r\nContent-Length: 44\r\n\r\n"+`{"text":"peers r1 7","client_msg_id":"r1-7"}`, req)
	require.True(t, p.sendOK(&loadkit.Response{Status: 201}))
	require.False(t, p.sendOK(&loadkit.Response{Status: 200}), "200 is a repeated client_msg_id")
}

// TestNchanPoll checks Nchan's long-poll protocol: the first poll sends no
// validators, each later one sends the previous answer's Last-Modified and
// Etag back, and a 304 or 408 changes nothing.
func TestNchanPoll(t *testing.T) {
	p := &nchanPeer{host: "127.0.0.1:2", room: "peers-r1", run: "r1"}
	var cur cursor
	require.Equal(t, "GET /sub?id=peers-r1 HTTP/1.1\r\nHost: 127.0.0.1:2\r\n\r\n", string(p.pollRequest(nil, &cur)))

	var got []int
	resp := &loadkit.Response{Status: 200, LastModified: "Mon, 30 Nov 2026 09:00:00 GMT", ETag: "0", Body: []byte("peers r1 5")}
	require.NoError(t, p.readPoll(resp, &cur, func(k int) { got = append(got, k) }))
	require.Equal(t, []int{5}, got)
	want := "GET /sub?id=peers-r1 HTTP/1.1\r\nHost: 127.0.0.1:2\r\nIf-Modified-Since: Mon, 30 Nov 2026 09:00:00 GMT\r\nIf-None-Match: 0\r\n\r\n"
	require.Equal(t, want, string(p.pollRequest(nil, &cur)))

	for _, status := range []int{304, 408} {
		require.NoError(t, p.readPoll(&loadkit.Response{Status: status}, &cur, nil))
		require.Equal(t, want, string(p.pollRequest(nil, &cur)))
	}
	require.Error(t, p.readPoll(&loadkit.Response{Status: 200, Body: []byte("peers r1 6")}, &cur, nil), "no Last-Modified")
	require.Error(t, p.readPoll(&loadkit.Response{Status: 500}, &cur, nil))

	require.Equal(t, "POST /pub?id=peers-r1 HTTP/1.1\r\nHost: 127.0.0.1:2\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\npeers r1 7",
		string(p.sendRequest(nil, 7)))
	require.True(t, p.sendOK(&loadkit.Response{Status: 201}))
	require.True(t, p.sendOK(&loadkit.Response{Status: 202}))
	require.False(t, p.sendOK(&loadkit.Response{Status: 403}))
}
