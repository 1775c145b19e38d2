package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
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
func (h *harness) legacyHome(name string) *http.Response {
	h.t.Helper()
	noRedirect := *h.client
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noRedirect.Get(h.url + "/home/?name=" + url.QueryEscape(name))
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
	r = h.do("GET", "/send_msg/", "", "", "")
	require.Equal(t, http.StatusMethodNotAllowed, r.status)
	require.Equal(t, shared.CodeMethodNotAllowed, r.errCode(t))
}
