package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/parley-chat/parley/app/api"
	"github.com/parley-chat/parley/shared"
	"github.com/stretchr/testify/require"
)

func TestErrorsDecodeToSharedCodes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/session":
			w.WriteHeader(http.StatusConflict)
			_ = json.NewEncoder(w).Encode(shared.ErrorResponse{Error: shared.Errorf(shared.CodeNameTaken, "taken")})
		case "/api/rooms/lobby/messages":
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(shared.ErrorResponse{Error: shared.Errorf(shared.CodeOverCapacity, "busy")})
		default:
			// A proxy's page, not the API's envelope.
			http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
		}
	}))
	defer srv.Close()
	c := &api.Client{Base: srv.URL}
	ctx := context.Background()

	_, err := c.Join(ctx, "alice")
	require.Equal(t, shared.CodeNameTaken, api.Code(err))
	require.Equal(t, shared.CodeNameTaken, shared.ErrorCode(err), "the shared helper sees the same code")
	require.False(t, api.Temporary(err))

	_, err = c.Send(ctx, "tok", "lobby", shared.SendRequest{Text: "x"})
	require.Equal(t, shared.CodeOverCapacity, api.Code(err))
	require.Equal(t, 3*time.Second, api.RetryAfter(err))
	require.True(t, api.Temporary(err))

	_, err = c.Members(ctx, "other")
	require.Equal(t, shared.CodeUnavailable, api.Code(err))
	require.True(t, api.Temporary(err))
}

func TestPollSendsCursorNonceAndToken(t *testing.T) {
	var seen []*http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r)
		_ = json.NewEncoder(w).Encode(shared.PollResponse{Room: "lobby", Epoch: "e", Next: 7})
	}))
	defer srv.Close()
	c := &api.Client{Base: srv.URL}
	after := uint64(5)
	for i := 0; i < 2; i++ {
		resp, err := c.Poll(context.Background(), "tok", "lobby", shared.PollRequest{After: &after, Epoch: "e", Wait: shared.Ptr(25)})
		require.NoError(t, err)
		require.EqualValues(t, 7, resp.Next)
	}
	var lean struct {
		Next uint64 `json:"next"`
	}
	require.NoError(t, c.PollInto(context.Background(), "", "lobby", shared.PollRequest{After: &after}, &lean))
	require.EqualValues(t, 7, lean.Next)
	require.Len(t, seen, 3)
	q := seen[0].URL.Query()
	require.Equal(t, "5", q.Get("after"))
	require.Equal(t, "e", q.Get("epoch"))
	require.Equal(t, "25", q.Get("wait"))
	require.Equal(t, "Bearer tok", seen[0].Header.Get("Authorization"))
	require.NotEmpty(t, q.Get("n"))
	require.NotEqual(t, q.Get("n"), seen[1].URL.Query().Get("n"), "every poll URL is unique")
}

func TestUnreachableIsNetworkAndCancelIsNot(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	c := &api.Client{Base: base}
	_, err := c.Members(context.Background(), "lobby")
	require.True(t, api.IsNetwork(err))
	require.True(t, api.Temporary(err))

	hold := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hold.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = (&api.Client{Base: hold.URL}).Poll(ctx, "", "lobby", shared.PollRequest{})
	require.True(t, errors.Is(err, context.DeadlineExceeded))
	require.False(t, api.IsNetwork(err), "a poll we cancelled is not a connection problem")
}

// The textbook's calls: /home/ is not followed to the app, /get_msg/ and
// /send_msg/ speak its formats, and OnBody sees every answer's size.
func TestTextbookCalls(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/home/":
			require.Equal(t, "x1", r.URL.Query().Get("name"))
			http.Redirect(w, r, "/", http.StatusSeeOther)
		case "/get_msg/":
			_ = json.NewEncoder(w).Encode(shared.LegacyMessage{Status: true, Msg: "hi " + r.URL.Query().Get("name")})
		case "/send_msg/":
			var body struct{ Content, Name string }
			require.NoError(t, json.NewDecoder(r.Body).Decode(&body))
			require.Equal(t, "x1", body.Name)
			_, _ = w.Write([]byte("OK"))
		default:
			t.Errorf("unexpected %s", r.URL.Path)
		}
	}))
	defer srv.Close()
	var sizes []int
	c := &api.Client{Base: srv.URL, OnBody: func(n int) { sizes = append(sizes, n) }}
	ctx := context.Background()
	require.NoError(t, c.TextbookHome(ctx, "", "x1"))
	m, err := c.TextbookGet(ctx, "", "x1")
	require.NoError(t, err)
	require.Equal(t, shared.LegacyMessage{Status: true, Msg: "hi x1"}, m)
	require.NoError(t, c.TextbookSend(ctx, "", "x1", "hello"))
	require.Len(t, sizes, 3)
	require.Equal(t, 2, sizes[2])
}

// A success status with an empty, null or undecodable body is no answer:
// the server's read timeout once cut a slow send that way, without storing
// it. Every call reports a temporary error, so the send stays queued.
func TestEmptyOrUndecodableSuccessIsTemporaryError(t *testing.T) {
	for _, body := range []string{"", "  \n", "null", "{\"seq\":", "<html>ok</html>"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(body))
		}))
		c := &api.Client{Base: srv.URL}
		ctx := context.Background()
		_, err := c.Send(ctx, "tok", "lobby", shared.SendRequest{Text: "x", ClientMsgID: "c1"})
		var bad *api.BadAnswerError
		require.ErrorAs(t, err, &bad, "send answered %q", body)
		require.Equal(t, http.StatusOK, bad.Status)
		require.True(t, api.Temporary(err), "send answered %q", body)
		require.False(t, api.IsNetwork(err), "the server was reached")
		_, err = c.Poll(ctx, "tok", "lobby", shared.PollRequest{})
		require.ErrorAs(t, err, &bad, "poll answered %q", body)
		require.True(t, api.Temporary(err))
		_, err = c.Join(ctx, "alice")
		require.ErrorAs(t, err, &bad, "join answered %q", body)
		srv.Close()
	}
}

// A send answered with an object that is not a stored message (no seq) is
// not taken as sent either; an answer without a body where none is asked
// for (leaving) is fine.
func TestSendAnswerWithoutSeqIsBad(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		_, _ = w.Write([]byte(`{"text":"x"}`))
	}))
	defer srv.Close()
	c := &api.Client{Base: srv.URL}
	_, err := c.Send(context.Background(), "tok", "lobby", shared.SendRequest{Text: "x", ClientMsgID: "c1"})
	var bad *api.BadAnswerError
	require.ErrorAs(t, err, &bad)
	require.True(t, api.Temporary(err))
	require.NoError(t, c.Leave(context.Background(), "tok"))
}
