package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parley-chat/parley/shared"
)

// The textbook page's calls, byte for byte: jQuery posts a form with
// content; getMsg polls /get_msg/?name=X in a loop.

func (h *harness) legacySend(content string, name ...string) {
	h.t.Helper()
	v := url.Values{"content": {content}}
	if len(name) > 0 {
		v.Set("name", name[0])
	}
	r := h.do("POST", "/send_msg/", "", "application/x-www-form-urlencoded; charset=UTF-8", v.Encode())
	require.Equal(h.t, http.StatusOK, r.status, "%s", r.body)
	require.Equal(h.t, "OK", string(r.body))
	require.Contains(h.t, r.header.Get("Content-Type"), "text/plain")
}

func (h *harness) legacyGet(name string) shared.LegacyMessage {
	h.t.Helper()
	r := h.do("GET", "/get_msg/?"+url.Values{"name": {name}}.Encode(), "", "", "")
	require.Equal(h.t, http.StatusOK, r.status, "%s", r.body)
	var m shared.LegacyMessage
	require.NoError(h.t, json.Unmarshal(r.body, &m), "%s", r.body)
	return m
}

func TestLegacyTextbookFlow(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.legacySend("before anyone registered")

	// home registers the name at the head of lobby and sends the browser on.
	resp := h.legacyHome("xiaoming")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "/", resp.Header.Get("Location"))

	// getMsg's loop, while another browser sends.
	got := make(chan shared.LegacyMessage, 1)
	go func() { got <- h.legacyGet("xiaoming") }()
	time.Sleep(50 * time.Millisecond) // usually parked by now; either way it must get the message
	h.legacySend("你好")
	select {
	case m := <-got:
		require.Equal(t, shared.LegacyMessage{Status: true, Msg: "你好"}, m,
			"messages from before registering are not delivered, the next one is")
	case <-time.After(15 * time.Second):
		t.Fatal("get_msg not answered")
	}

	// One message per call, in order, none lost between calls.
	for i := range 3 {
		h.legacySend(fmt.Sprint("m", i), "lisi")
	}
	for i := range 3 {
		require.Equal(t, shared.LegacyMessage{Status: true, Msg: fmt.Sprint("m", i)}, h.legacyGet("xiaoming"))
	}
	msgs := h.poll("", "lobby", "").Messages
	require.Equal(t, "anonymous", msgs[0].Author)
	require.Equal(t, "lisi", msgs[len(msgs)-1].Author)
	for _, m := range msgs {
		require.Equal(t, shared.ViaTextbook, m.Via, "textbook posts are marked on the wire")
	}
}

// TestLegacySendCannotPoseAsLiveSession: issue 8 saw /send_msg/ store
// name=alice while alice held a session, indistinguishable from hers.
func TestLegacySendCannotPoseAsLiveSession(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tok := h.join("alice")
	h.join("anonymous")
	for _, body := range []string{"content=forged&name=alice", "content=forged&name=Alice", "content=forged&name=%D0%B0lice", "content=forged"} {
		r := h.do("POST", "/send_msg/", "", formType, body)
		require.Equal(t, http.StatusConflict, r.status, "%s: %s", body, r.body)
		require.Equal(t, shared.CodeNameTaken, r.errCode(t))
	}
	require.Empty(t, h.poll("", "lobby", "").Messages)

	// Once alice has left, the name is free for the textbook too, and
	// what it posts is marked as such.
	require.Equal(t, http.StatusNoContent, h.do("DELETE", "/api/session", tok, "", "").status)
	h.legacySend("now free", "alice")
	m := h.poll("", "lobby", "").Messages[0]
	require.Equal(t, "alice", m.Author)
	require.Equal(t, shared.ViaTextbook, m.Via)
	native := h.send(h.join("bob"), "lobby", "native", "")
	require.Empty(t, native.Via, "API messages are not marked")
}

func TestLegacySendRateLimitedPerAddress(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(s *settings) { s.api.LegacySendRate, s.api.LegacySendBurst = 0.5, 3 })
	for range 3 {
		h.legacySend("burst")
	}
	r := h.do("POST", "/send_msg/", "", formType, "content=one+too+many")
	require.Equal(t, http.StatusTooManyRequests, r.status, "%s", r.body)
	require.Equal(t, shared.CodeRateLimited, r.errCode(t))
	require.Equal(t, "2", r.header.Get("Retry-After"))
	require.Len(t, h.poll("", "lobby", "").Messages, 3)
}

// TestLegacyCursorBelongsToOneBrowser: issue 8 drained bob's cursor with
// GET /get_msg/?name=bob from anywhere. Each browser (cookie) now reads its
// own cursor for a name, so another one asking for bob takes nothing of his.
func TestLegacyCursorBelongsToOneBrowser(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	resp := h.legacyHome("bob")
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "parley_textbook" {
			cookie = c
		}
	}
	require.NotNil(t, cookie, "/home/ sets the browser's cookie")
	require.True(t, cookie.HttpOnly)
	require.Equal(t, http.SameSiteLaxMode, cookie.SameSite)
	require.Equal(t, "/", cookie.Path)

	other := newBrowser(t, h)
	other.legacyHome("bob")
	h.legacySend("one")
	h.legacySend("two")
	require.Equal(t, "one", other.legacyGet("bob").Msg)
	require.Equal(t, "two", other.legacyGet("bob").Msg)
	require.Equal(t, shared.LegacyMessage{Status: true, Msg: "one"}, h.legacyGet("bob"), "the other browser took nothing of this one's")
	require.Equal(t, shared.LegacyMessage{Status: true, Msg: "two"}, h.legacyGet("bob"))
}

// newBrowser is another browser on h's server: the same transport, its own
// cookies.
func newBrowser(t *testing.T, h *harness) *harness {
	b := *h
	client := *h.client
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	client.Jar = jar
	b.client = &client
	return &b
}

func TestLegacyTimeoutAfterTenSeconds(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	start := time.Now()
	require.Equal(t, shared.LegacyMessage{Status: false, Msg: ""}, h.legacyGet("nobody-talks"))
	require.GreaterOrEqual(t, time.Since(start), shared.LegacyWait-100*time.Millisecond, "the textbook waits 10 s before saying nothing")
}

func TestLegacyAndNativeSeeEachOther(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tok := h.join("alice")
	// Register the legacy reader at the head, then let the native client
	// join (its join is logged) and talk.
	got := make(chan shared.LegacyMessage, 1)
	go func() { got <- h.legacyGet("old-browser") }()
	require.Eventually(t, func() bool { return h.api.HeldPolls() == 1 }, 10*time.Second, 5*time.Millisecond)
	h.poll(tok, "lobby", "")
	h.flushPresence()
	h.send(tok, "lobby", "from the go-app client", "")
	select {
	case m := <-got:
		require.Equal(t, shared.LegacyMessage{Status: true, Msg: "from the go-app client"}, m, "join is skipped, text delivered")
	case <-time.After(15 * time.Second):
		t.Fatal("legacy reader did not get the native message")
	}

	cur := h.poll("", "lobby", "")
	native := make(chan shared.PollResponse, 1)
	go func() { native <- h.poll(tok, "lobby", fmt.Sprintf("after=%d&epoch=%s&wait=30", cur.Next, cur.Epoch)) }()
	h.legacySend("from jQuery", "zhangsan")
	select {
	case p := <-native:
		require.Equal(t, []string{"text:zhangsan:from jQuery"}, kinds(p.Messages))
	case <-time.After(15 * time.Second):
		t.Fatal("native poller did not get the legacy message")
	}
}

func TestLegacyConcurrentGetsDeliverEachMessageOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.legacyHome("twotabs")
	for i := range 6 {
		h.legacySend(fmt.Sprint(i))
	}
	var mu sync.Mutex
	var seen []string
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for range 3 {
				m := h.legacyGet("twotabs")
				mu.Lock()
				seen = append(seen, m.Msg)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.ElementsMatch(t, []string{"0", "1", "2", "3", "4", "5"}, seen, "a shared name is one queue: each message once")
}

// legacyHome opens the textbook's home page for name, without following
// its redirect.
func (h *harness) legacyHome(name string, room ...string) *http.Response {
	h.t.Helper()
	noRedirect := *h.client
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	q := url.Values{"name": {name}}
	if len(room) > 0 {
		q.Set("room", room[0])
	}
	resp, err := noRedirect.Get(h.url + "/home/?" + q.Encode())
	require.NoError(h.t, err)
	resp.Body.Close()
	return resp
}

func TestLegacyErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.do("POST", "/send_msg/", "", formType, "content=")
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Equal(t, shared.CodeTextEmpty, r.errCode(t))
	r = h.do("POST", "/send_msg/", "", formType, "content=x&name=%07")
	require.Equal(t, shared.CodeInvalidName, r.errCode(t))
	r = h.do("GET", "/get_msg/", "", "", "")
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Equal(t, shared.CodeInvalidName, r.errCode(t))
	r = h.do("GET", "/get_msg/?name=a&name=b", "", "", "")
	require.Equal(t, shared.CodeInvalidParam, r.errCode(t))
	r = h.do("POST", "/send_msg/", "", formType, "content=x&content=y")
	require.Equal(t, shared.CodeBadRequest, r.errCode(t), "a field given twice in a form")
	r = h.do("GET", "/send_msg/", "", "", "")
	require.Equal(t, http.StatusMethodNotAllowed, r.status)
	require.Equal(t, shared.CodeMethodNotAllowed, r.errCode(t))
}

// Parley's addition for pages that want a room of their own (the /learn
// page): an optional room on the three textbook endpoints. Without it
// they read and write lobby as the textbook did.
func TestLegacyEndpointsInARoomOfTheirOwn(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	get := func(q url.Values) shared.LegacyMessage {
		t.Helper()
		r := h.do("GET", "/get_msg/?"+q.Encode(), "", "", "")
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		var m shared.LegacyMessage
		require.NoError(t, json.Unmarshal(r.body, &m))
		return m
	}
	require.Equal(t, http.StatusSeeOther, h.legacyHome("learner", "learn-ab12").StatusCode)
	require.Equal(t, http.StatusSeeOther, h.legacyHome("learner").StatusCode) // lobby too

	post := url.Values{"content": {"only here"}, "name": {"learner"}, "room": {"learn-ab12"}}
	r := h.do("POST", "/send_msg/", "", formType, post.Encode())
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	h.legacySend("in lobby")

	require.Equal(t, shared.LegacyMessage{Status: true, Msg: "only here"}, get(url.Values{"name": {"learner"}, "room": {"learn-ab12"}}))
	require.Equal(t, shared.LegacyMessage{Status: true, Msg: "in lobby"}, h.legacyGet("learner"), "lobby's cursor is its own")
	for _, m := range h.poll("", "lobby", "").Messages {
		require.NotEqual(t, "only here", m.Text, "nothing of the room shows in lobby")
	}
	room := h.poll("", "learn-ab12", "").Messages
	require.Len(t, room, 1)
	require.Equal(t, shared.ViaTextbook, room[0].Via)

	for _, q := range []url.Values{{"name": {"x"}, "room": {"Bad Room"}}, {"name": {"x"}, "room": {"a", "b"}}} {
		r := h.do("GET", "/get_msg/?"+q.Encode(), "", "", "")
		require.Equal(t, http.StatusBadRequest, r.status, "%v: %s", q, r.body)
	}
	r = h.do("POST", "/send_msg/", "", formType, url.Values{"content": {"x"}, "room": {"../lobby"}}.Encode())
	require.Equal(t, shared.CodeInvalidRoom, r.errCode(t))
}
