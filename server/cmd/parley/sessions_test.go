package main

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parley-chat/parley/shared"
)

// With the embedded store, a restart (here SIGKILL) keeps everyone signed
// in and present: the old token still works, and the room shows one
// "joined" and no "left".
func TestBoltRestartKeepsSessionsAndPresence(t *testing.T) {
	dir := t.TempDir()
	args := []string{"-store", "bolt", "-data", filepath.Join(dir, "parley.db"), "-addr", "127.0.0.1:0", "-web", dir}
	hc := newClient(t)
	p := startParley(t, args...)
	tok := createSession(t, hc, p.url, "Fay")
	pollAs := func(base string, after uint64) shared.PollResponse {
		t.Helper()
		var pr shared.PollResponse
		resp, err := apiCall(context.Background(), hc, http.MethodGet,
			base+"/api/rooms/lobby/messages?"+shared.PollRequest{After: shared.Ptr(after), Wait: shared.Ptr(1)}.Query().Encode(), tok, nil, &pr)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		return pr
	}
	pr := pollAs(p.url, 0)
	require.Eventually(t, func() bool {
		return len(readAll(t, hc, p.url, "lobby", pr.Epoch)) == 1
	}, 5*time.Second, 20*time.Millisecond, "the join is logged")
	p.kill()

	p = startParley(t, args...)
	r := send(context.Background(), hc, func() string { return p.url }, tok, "lobby", "still here", "")
	require.Equal(t, http.StatusCreated, r.status, "the old token works after the restart")
	pollAs(p.url, 0)
	pollAs(p.url, r.msg.Seq)
	log := readAll(t, hc, p.url, "lobby", pr.Epoch)
	var kinds []string
	for _, m := range log {
		kinds = append(kinds, string(m.Kind)+" "+m.Author)
	}
	require.Equal(t, []string{"join Fay", "text Fay"}, kinds)
	resp, err := apiCall(context.Background(), hc, http.MethodPost, p.url+"/api/session", "", shared.SessionRequest{Name: "fay"}, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusConflict, resp.StatusCode, "the name is still taken")
}
