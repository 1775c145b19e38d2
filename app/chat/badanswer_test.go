package chat_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/app/api"
	"github.com/parley-chat/parley/app/chat"
	"github.com/parley-chat/parley/shared"
	"github.com/stretchr/testify/require"
)

// httpFront serves a fakeServer over HTTP, so that the Syncer meets
// answers through the real api.Client. The next badSends sends and
// badPolls polls are answered 200 with an empty body and not processed,
// as the server did when its read timeout cut a slow send.
type httpFront struct {
	f *fakeServer

	mu                 sync.Mutex
	badSends, badPolls int
	sendIDs            []string // the client_msg_id of every send, bad ones too
}

func (h *httpFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	var out any
	var err error
	switch {
	case r.URL.Path == "/api/session":
		var req shared.SessionRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		out, err = h.f.Join(ctx, req.Name)
	case strings.HasSuffix(r.URL.Path, "/members"):
		out, err = h.f.Members(ctx, "lobby")
	case r.Method == http.MethodPost:
		var req shared.SendRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		h.mu.Lock()
		h.sendIDs = append(h.sendIDs, req.ClientMsgID)
		bad := h.badSends > 0
		h.badSends--
		h.mu.Unlock()
		if bad {
			return
		}
		out, err = h.f.Send(ctx, token, "lobby", req)
	default:
		h.mu.Lock()
		bad := h.badPolls > 0
		h.badPolls--
		h.mu.Unlock()
		if bad {
			return
		}
		out, err = h.f.Poll(ctx, token, "lobby", pollRequest(r))
	}
	if st, ok := err.(*api.StatusError); ok {
		w.WriteHeader(st.Status)
		out = shared.ErrorResponse{Error: st.Err}
	} else if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		out = shared.ErrorResponse{Error: shared.Errorf(shared.CodeUnavailable, "%v", err)}
	}
	_ = json.NewEncoder(w).Encode(out)
}

func pollRequest(r *http.Request) shared.PollRequest {
	q := r.URL.Query()
	var req shared.PollRequest
	num := func(k string) *uint64 {
		if n, err := strconv.ParseUint(q.Get(k), 10, 64); err == nil {
			return &n
		}
		return nil
	}
	req.After, req.Before, req.Epoch = num("after"), num("before"), q.Get("epoch")
	if n := num("wait"); n != nil {
		req.Wait = shared.Ptr(int(*n))
	}
	if n := num("limit"); n != nil {
		req.Limit = shared.Ptr(int(*n))
	}
	return req
}

func (b browser) openOver(t *testing.T, base string) *tab {
	t.Helper()
	return b.openAPI(t, &api.Client{Base: base}, 1)
}

// A send answered 200 with an empty body was not stored: the item stays
// in the outbox and goes again with the same client_msg_id until a real
// answer comes, and the message is stored once.
func TestEmptySendAnswerKeepsItemAndRetriesSameID(t *testing.T) {
	f := newFakeServer()
	front := &httpFront{f: f, badSends: 2}
	srv := httptest.NewServer(front)
	defer srv.Close()
	b := newBrowser()
	join(t, b, f, "alice")
	tb := b.openOver(t, srv.URL)
	it, err := tb.s.Send("cut short")
	require.NoError(t, err)
	eventually(t, "acknowledged", func() bool {
		v := tb.s.View(0)
		return len(v.Outbox) == 0 && len(v.Entries) == 1
	})
	require.Equal(t, []string{"cut short"}, f.texts())
	front.mu.Lock()
	defer front.mu.Unlock()
	require.Len(t, front.sendIDs, 3, "two empty answers, then the one that stored it")
	for _, id := range front.sendIDs {
		require.Equal(t, it.ID, id)
	}
}

// Polls answered 200 with an empty body are failures with backoff, not
// an empty batch from a connected server.
func TestEmptyPollAnswerIsTransient(t *testing.T) {
	f := newFakeServer()
	f.post("bob", "before")
	front := &httpFront{f: f, badPolls: 1 << 30}
	srv := httptest.NewServer(front)
	defer srv.Close()
	b := newBrowser()
	join(t, b, f, "alice")
	tb := b.openOver(t, srv.URL)
	eventually(t, "reconnecting", func() bool { return tb.s.View(0).Conn == chat.Reconnecting })
	time.Sleep(300 * time.Millisecond)
	require.NotEqual(t, chat.Connected, tb.s.View(0).Conn)
	f.mu.Lock()
	polls := f.polls
	f.mu.Unlock()
	require.Zero(t, polls, "no bad answer reached the fake")
	front.mu.Lock()
	tried := -(front.badPolls - 1<<30)
	front.badPolls = 0
	front.mu.Unlock()
	// 300 ms of backoff from 10 ms doubling to 50 ms: about ten tries, not
	// the hundreds of a loop that takes an empty answer as a quick one.
	require.Less(t, tried, 40, "polls during the bad answers")
	eventually(t, "connected with the message", func() bool {
		v := tb.s.View(0)
		return v.Conn == chat.Connected && len(v.Entries) == 1
	})
}
