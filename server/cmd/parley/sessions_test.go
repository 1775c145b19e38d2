package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
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
	legacySend(t, hc, p.url, "before the restart")
	require.Equal(t, http.StatusOK, legacyGetStatus(t, hc, p.url+"/home/?name=xiaoming"))
	legacySend(t, hc, p.url, "first")
	require.Equal(t, shared.LegacyMessage{Status: true, Msg: "first"}, legacyGet(t, hc, p.url, "xiaoming"))
	pr := pollAs(p.url, 0)
	require.Eventually(t, func() bool {
		log := readAll(t, hc, p.url, "lobby", pr.Epoch)
		return len(log) == 3 && log[2].Kind == shared.KindJoin
	}, 5*time.Second, 20*time.Millisecond, "the join is logged")
	p.kill()

	p = startParley(t, args...)
	legacySend(t, hc, p.url, "after the restart")
	require.Equal(t, shared.LegacyMessage{Status: true, Msg: "after the restart"}, legacyGet(t, hc, p.url, "xiaoming"),
		"the textbook cursor was kept: the next message, not a wait at the head")
	r := send(context.Background(), hc, func() string { return p.url }, tok, "lobby", "still here", "")
	require.Equal(t, http.StatusCreated, r.status, "the old token works after the restart")
	pollAs(p.url, 0)
	pollAs(p.url, r.msg.Seq)
	log := readAll(t, hc, p.url, "lobby", pr.Epoch)
	var kinds []string
	for _, m := range log {
		kinds = append(kinds, string(m.Kind)+" "+m.Author)
	}
	require.Equal(t, []string{"text anonymous", "text anonymous", "join Fay", "text anonymous", "text Fay"}, kinds)
	resp, err := apiCall(context.Background(), hc, http.MethodPost, p.url+"/api/session", "", shared.SessionRequest{Name: "fay"}, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusConflict, resp.StatusCode, "the name is still taken")
}

// legacySend posts to the textbook's /send_msg/.
func legacySend(t *testing.T, hc *http.Client, base, content string) {
	t.Helper()
	resp, err := hc.PostForm(base+"/send_msg/", url.Values{"content": {content}})
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// legacyGet is one textbook /get_msg/ for name.
func legacyGet(t *testing.T, hc *http.Client, base, name string) shared.LegacyMessage {
	t.Helper()
	resp, err := hc.Get(base + "/get_msg/?name=" + url.QueryEscape(name))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var m shared.LegacyMessage
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
	return m
}

// legacyGetStatus is a GET whose answer's status is all that matters.
func legacyGetStatus(t *testing.T, hc *http.Client, u string) int {
	t.Helper()
	noRedirect := *hc
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noRedirect.Get(u)
	require.NoError(t, err)
	_ = resp.Body.Close()
	if resp.StatusCode == http.StatusSeeOther {
		return http.StatusOK
	}
	return resp.StatusCode
}
