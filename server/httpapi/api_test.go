package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/parley-chat/parley/server/memstore"
	"github.com/parley-chat/parley/server/queue"
	"github.com/parley-chat/parley/shared"
)

func TestHealthz(t *testing.T) {
	h := newHarness(t)
	r := h.do("GET", "/healthz", "", "", "")
	require.Equal(t, http.StatusOK, r.status)
}

func TestCreateSession(t *testing.T) {
	h := newHarness(t)
	r := h.do("POST", "/api/session", "", jsonType, `{"name":"  小明 "}`)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	var s shared.SessionResponse
	require.NoError(t, json.Unmarshal(r.body, &s))
	require.Equal(t, "小明", s.Name, "the name comes back trimmed")
	require.GreaterOrEqual(t, len(s.Token), 22)

	for _, c := range []struct {
		name, ctype, body string
		status            int
		code              string
	}{
		{"taken", formType, "name=%E5%B0%8F%E6%98%8E", 409, shared.CodeNameTaken},
		{"empty", formType, "name=+", 400, shared.CodeInvalidName},
		{"missing", jsonType, `{}`, 400, shared.CodeInvalidName},
		{"too long", jsonType, `{"name":"` + strings.Repeat("x", 33) + `"}`, 400, shared.CodeInvalidName},
		{"control", jsonType, `{"name":"a\u0007"}`, 400, shared.CodeInvalidName},
		{"bad json", jsonType, `{"name":`, 400, shared.CodeBadRequest},
		{"wrong json type", jsonType, `{"name":5}`, 400, shared.CodeBadRequest},
		{"no content type", "", `name=x`, 415, shared.CodeUnsupportedType},
		{"text/plain", "text/plain", `name=x`, 415, shared.CodeUnsupportedType},
		{"too large", formType, "name=" + strings.Repeat("x", shared.MaxBodyBytes+1), 413, shared.CodeBodyTooLarge},
		{"too large json", jsonType, `{"name":"` + strings.Repeat("x", shared.MaxBodyBytes+1) + `"}`, 413, shared.CodeBodyTooLarge},
		// Look-alikes and invisibles of a live name (issue 8).
		{"live name + zero width", jsonType, `{"name":"小明\u200b"}`, 400, shared.CodeInvalidName},
		{"zero width", formType, "name=%E2%80%8B", 400, shared.CodeInvalidName},
		{"braille blank", jsonType, `{"name":"\u2800"}`, 400, shared.CodeInvalidName},
		{"bad utf8 json", jsonType, "{\"name\":\"a\xffb\"}", 400, shared.CodeInvalidName},
		{"lone surrogate json", jsonType, `{"name":"\udc00bob"}`, 400, shared.CodeInvalidName},
	} {
		r := h.do("POST", "/api/session", "", c.ctype, c.body)
		require.Equal(t, c.status, r.status, "%s: %s", c.name, r.body)
		require.Equal(t, c.code, r.errCode(t), c.name)
		require.Contains(t, r.header.Get("Content-Type"), "application/json")
	}
}

func TestLookAlikeNamesAreTaken(t *testing.T) {
	h := newHarness(t)
	h.join("alice")
	for _, name := range []string{"Alice", "\u0430lice", "ａｌｉｃｅ", "al\u0456ce", "a1ice", "e\u0301"} {
		r := h.do("POST", "/api/session", "", formType, url.Values{"name": {name}}.Encode())
		if name == "e\u0301" {
			require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
			continue
		}
		require.Equal(t, http.StatusConflict, r.status, "%q: %s", name, r.body)
		require.Equal(t, shared.CodeNameTaken, r.errCode(t))
	}
	r := h.do("POST", "/api/session", "", formType, "name=%C3%A9")
	require.Equal(t, shared.CodeNameTaken, r.errCode(t), "é composed and decomposed are one name")
}

// TestRateLimitsBehindATrustedProxy: behind a proxy every client shares
// its address; with the proxy trusted, X-Forwarded-For keys the limit, and
// a client cannot escape it by sending the header itself.
func TestRateLimitsBehindATrustedProxy(t *testing.T) {
	h := newHarness(t, func(s *settings) {
		s.api.SessionRate, s.api.SessionBurst = rate.Every(time.Hour), 1
		s.api.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	})
	join := func(xff, name string) int {
		return h.doHeader(context.Background(), http.Header{"X-Forwarded-For": {xff}}, "POST", "/api/session", "", formType, "name="+name).status
	}
	require.Equal(t, http.StatusCreated, join("192.0.2.1", "a"))
	require.Equal(t, http.StatusTooManyRequests, join("192.0.2.1", "b"))
	require.Equal(t, http.StatusTooManyRequests, join("203.0.113.9, 192.0.2.1", "b"), "a forged left entry changes nothing")
	require.Equal(t, http.StatusCreated, join("192.0.2.2", "c"), "another client behind the same proxy")
	require.Equal(t, http.StatusCreated, join("2001:db8:1:2::1", "d"))
	require.Equal(t, http.StatusTooManyRequests, join("2001:db8:1:2::99", "e"), "the same /64")
}

func TestCreateSessionRateLimited(t *testing.T) {
	h := newHarness(t, func(s *settings) {
		s.api.SessionRate, s.api.SessionBurst = rate.Every(time.Hour), 2
	})
	h.join("a")
	h.join("b")
	r := h.do("POST", "/api/session", "", formType, "name=c")
	require.Equal(t, http.StatusTooManyRequests, r.status)
	require.Equal(t, shared.CodeRateLimited, r.errCode(t))
	secs, err := strconv.Atoi(r.header.Get("Retry-After"))
	require.NoError(t, err)
	require.Positive(t, secs)
}

func TestEndSession(t *testing.T) {
	h := newHarness(t)
	tok := h.join("alice")
	h.poll(tok, "lobby", "")
	r := h.do("DELETE", "/api/session", tok, "", "")
	require.Equal(t, http.StatusNoContent, r.status)
	h.flushPresence()
	require.Equal(t, []string{"join:alice:", "leave:alice:"}, kinds(h.poll("", "lobby", "").Messages))

	r = h.do("DELETE", "/api/session", tok, "", "")
	require.Equal(t, http.StatusUnauthorized, r.status)
	require.Equal(t, shared.CodeUnknownToken, r.errCode(t))
	r = h.do("DELETE", "/api/session", "", "", "")
	require.Equal(t, http.StatusUnauthorized, r.status)
	require.Equal(t, shared.CodeUnauthorized, r.errCode(t))
	h.join("alice") // the name is free again
}

func TestSend(t *testing.T) {
	h := newHarness(t)
	tok := h.join("alice")
	m := h.send(tok, "lobby", "hello, 世界", "c1")
	require.EqualValues(t, 1, m.Seq)
	require.Equal(t, "lobby", m.Room)
	require.Equal(t, shared.KindText, m.Kind)
	require.Equal(t, "alice", m.Author, "the author is the session's name, never the client's say")
	require.Equal(t, "c1", m.ClientMsgID)
	require.WithinDuration(t, time.Now(), m.SentAt, time.Minute)

	// The same client_msg_id again: 200 and the original, not a new message.
	r := h.do("POST", "/api/rooms/lobby/messages", tok, formType, "text=hello%2C+%E4%B8%96%E7%95%8C&client_msg_id=c1")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var again shared.Message
	require.NoError(t, json.Unmarshal(r.body, &again))
	require.Equal(t, m, again)

	// Forms from a textarea carry CRLF; the log keeps LF.
	r = h.do("POST", "/api/rooms/lobby/messages", tok, formType, "text=a%0D%0Ab")
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	require.Equal(t, []string{"text:alice:hello, 世界", "text:alice:a\nb"}, kinds(h.poll("", "lobby", "").Messages))
}

func TestSendErrors(t *testing.T) {
	h := newHarness(t)
	tok := h.join("alice")
	for _, c := range []struct {
		name, room, token, ctype, body string
		status                         int
		code                           string
	}{
		{"no token", "lobby", "", jsonType, `{"text":"x"}`, 401, shared.CodeUnauthorized},
		{"unknown token", "lobby", "forged", jsonType, `{"text":"x"}`, 401, shared.CodeUnknownToken},
		{"bad room", "Lobby", tok, jsonType, `{"text":"x"}`, 400, shared.CodeInvalidRoom},
		{"empty", "lobby", tok, jsonType, `{"text":""}`, 400, shared.CodeTextEmpty},
		{"blank", "lobby", tok, jsonType, `{"text":" \n\t "}`, 400, shared.CodeTextEmpty},
		{"too long", "lobby", tok, jsonType, `{"text":"` + strings.Repeat("字", 2001) + `"}`, 400, shared.CodeTextTooLong},
		{"control", "lobby", tok, jsonType, `{"text":"a\u0000b"}`, 400, shared.CodeTextInvalid},
		{"bad utf8", "lobby", tok, formType, `text=%FF%FE`, 400, shared.CodeTextInvalid},
		{"bad utf8 json", "lobby", tok, jsonType, "{\"text\":\"a\xff\xfeb\"}", 400, shared.CodeTextInvalid},
		{"lone surrogate json", "lobby", tok, jsonType, `{"text":"a\ud800b"}`, 400, shared.CodeTextInvalid},
		{"invisible only", "lobby", tok, jsonType, `{"text":"\u200b\u2800\ufeff"}`, 400, shared.CodeTextEmpty},
		{"zalgo", "lobby", tok, jsonType, `{"text":"a` + strings.Repeat(`\u0301`, 1999) + `"}`, 400, shared.CodeTextInvalid},
		{"long id", "lobby", tok, jsonType, `{"text":"x","client_msg_id":"` + strings.Repeat("i", 65) + `"}`, 400, shared.CodeClientMsgIDTooLong},
		{"bad json", "lobby", tok, jsonType, `[`, 400, shared.CodeBadRequest},
		{"xml", "lobby", tok, "application/xml", `<text>x</text>`, 415, shared.CodeUnsupportedType},
		{"huge", "lobby", tok, formType, "text=" + strings.Repeat("x", 40000), 413, shared.CodeBodyTooLarge},
	} {
		r := h.do("POST", "/api/rooms/"+c.room+"/messages", c.token, c.ctype, c.body)
		require.Equal(t, c.status, r.status, "%s: %s", c.name, r.body)
		require.Equal(t, c.code, r.errCode(t), c.name)
	}
	require.Empty(t, h.poll("", "lobby", "").Messages, "nothing bad was logged")
	h.send(tok, "lobby", "still serving", "")
	r := h.do("POST", "/api/rooms/lobby/messages", tok, jsonType, `{"text":"a pair \ud83d\ude00"}`)
	require.Equal(t, http.StatusCreated, r.status, "%s", r.body)
	require.Contains(t, string(r.body), "😀")
}

func TestSendRateLimited(t *testing.T) {
	h := newHarness(t, func(s *settings) {
		s.session.SendRate, s.session.SendBurst = rate.Every(time.Hour), 3
	})
	tok := h.join("alice")
	for i := range 3 {
		h.send(tok, "lobby", fmt.Sprint(i), "")
	}
	r := h.do("POST", "/api/rooms/lobby/messages", tok, jsonType, `{"text":"one too many"}`)
	require.Equal(t, http.StatusTooManyRequests, r.status)
	require.Equal(t, shared.CodeRateLimited, r.errCode(t))
	require.NotEmpty(t, r.header.Get("Retry-After"))
	other := h.join("bob")
	h.send(other, "lobby", "others are not limited", "")
}

func TestPollLatestAfterAndHistory(t *testing.T) {
	h := newHarness(t)
	tok := h.join("alice")
	for i := range 60 {
		h.send(tok, "lobby", fmt.Sprint(i), "")
	}
	latest := h.poll("", "lobby", "")
	require.Len(t, latest.Messages, shared.DefaultLimit)
	require.EqualValues(t, 11, latest.Messages[0].Seq)
	require.EqualValues(t, 60, latest.Next)
	require.Equal(t, "lobby", latest.Room)

	page := h.poll("", "lobby", "before=11&limit=500")
	require.Len(t, page.Messages, 10)
	require.EqualValues(t, 1, page.Messages[0].Seq)

	batch := h.poll("", "lobby", url.Values{"after": {"55"}, "epoch": {latest.Epoch}, "limit": {"3"}, "_": {"nonce"}}.Encode())
	require.Equal(t, []string{"text:alice:55", "text:alice:56", "text:alice:57"}, kinds(batch.Messages))
	require.EqualValues(t, 58, batch.Messages[2].Seq)
	require.EqualValues(t, 58, batch.Next)

	reset := h.poll("", "lobby", "after=3&epoch=stale&limit=2")
	require.True(t, reset.Reset)
	require.EqualValues(t, 60, reset.Next)
	require.Len(t, reset.Messages, 2)
	beyond := h.poll("", "lobby", "after=99&epoch="+latest.Epoch)
	require.True(t, beyond.Reset)
}

func TestLongPollWakesOnSend(t *testing.T) {
	h := newHarness(t)
	alice, bob := h.join("alice"), h.join("bob")
	first := h.poll(bob, "lobby", "")
	h.flushPresence()
	cur := h.poll(bob, "lobby", "").Next // past bob's join

	got := make(chan shared.PollResponse, 1)
	go func() {
		got <- h.poll(bob, "lobby", fmt.Sprintf("after=%d&epoch=%s&wait=30", cur, first.Epoch))
	}()
	h.send(alice, "lobby", "ping", "")
	select {
	case p := <-got:
		require.Equal(t, []string{"text:alice:ping"}, kinds(p.Messages))
		require.Equal(t, p.Messages[0].Seq, p.Next)
	case <-time.After(20 * time.Second):
		t.Fatal("long poll not answered after a send")
	}
}

func TestPollTimeoutAndShortPoll(t *testing.T) {
	h := newHarness(t)
	p := h.poll("", "quiet", "after=0&wait=1")
	require.Empty(t, p.Messages)
	require.EqualValues(t, 0, p.Next)
	require.Equal(t, "[]", string(mustRaw(t, h, "/api/rooms/quiet/messages?after=0&wait=0")["messages"]))
}

func mustRaw(t *testing.T, h *harness, path string) map[string]json.RawMessage {
	r := h.do("GET", path, "", "", "")
	require.Equal(t, http.StatusOK, r.status)
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(r.body, &m))
	return m
}

func TestPollErrors(t *testing.T) {
	h := newHarness(t)
	for q, code := range map[string]string{
		"after=x":          shared.CodeInvalidParam,
		"after=-1":         shared.CodeInvalidParam,
		"after=1.5":        shared.CodeInvalidParam,
		"before=0":         shared.CodeInvalidParam,
		"before=x":         shared.CodeInvalidParam,
		"after=1&before=5": shared.CodeInvalidParam,
		"wait=61":          shared.CodeInvalidParam,
		"wait=-1":          shared.CodeInvalidParam,
		"wait=soon":        shared.CodeInvalidParam,
		"limit=0":          shared.CodeInvalidParam,
		"limit=501":        shared.CodeInvalidParam,
		"limit=many":       shared.CodeInvalidParam,
		"after=1&after=9":  shared.CodeInvalidParam, // issue 8: one endpoint took the first, another the last
		"wait=0&WAIT=60":   shared.CodeInvalidParam,
	} {
		r := h.do("GET", "/api/rooms/lobby/messages?"+q, "", "", "")
		require.Equal(t, http.StatusBadRequest, r.status, "%s: %s", q, r.body)
		require.Equal(t, code, r.errCode(t), q)
	}
	r := h.do("GET", "/api/rooms/NOPE/messages", "", "", "")
	require.Equal(t, shared.CodeInvalidRoom, r.errCode(t))
	r = h.do("GET", "/api/rooms/lobby/messages?after=0", "forged", "", "")
	require.Equal(t, http.StatusUnauthorized, r.status)
	require.Equal(t, shared.CodeUnknownToken, r.errCode(t))
	h.poll("", "lobby", "utm_source=x&v=1&limit=500&wait=60")
}

func TestPollOverCapacity(t *testing.T) {
	h := newHarness(t, func(s *settings) { s.session.MaxHeld = 1 })
	ctx, cancel := context.WithCancel(context.Background())
	held := make(chan reply, 1)
	go func() { held <- h.doCtx(ctx, "GET", "/api/rooms/lobby/messages?after=0&wait=60", "", "", "") }()
	require.Eventually(t, func() bool { return h.api.HeldPolls() == 1 }, 10*time.Second, 5*time.Millisecond)
	r := h.do("GET", "/api/rooms/lobby/messages?after=0&wait=60", "", "", "")
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	require.Equal(t, shared.CodeOverCapacity, r.errCode(t))
	require.Equal(t, "5", r.header.Get("Retry-After"))
	// Polls that cannot wait are still served.
	h.poll("", "lobby", "")
	cancel()
	<-held
	require.Eventually(t, func() bool { return h.api.HeldPolls() == 0 }, 10*time.Second, 5*time.Millisecond)
}

func TestPresenceAndMembers(t *testing.T) {
	h := newHarness(t)
	alice, bob := h.join("alice"), h.join("bob")
	h.poll(alice, "lobby", "")
	h.clock.Add(time.Second)
	h.poll(bob, "lobby", "")
	h.poll(bob, "lobby", "") // a second poll does not join twice
	h.flushPresence()

	r := h.do("GET", "/api/rooms/lobby/members", "", "", "")
	require.Equal(t, http.StatusOK, r.status)
	var mem shared.MembersResponse
	require.NoError(t, json.Unmarshal(r.body, &mem))
	require.Len(t, mem.Members, 2)
	require.Equal(t, "alice", mem.Members[0].Name)
	require.Equal(t, "bob", mem.Members[1].Name)
	require.Equal(t, []string{"join:alice:", "join:bob:"}, kinds(h.poll("", "lobby", "").Messages))

	// bob's tab closes: his held poll is dropped by the client.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan reply, 1)
	go func() { done <- h.doCtx(ctx, "GET", "/api/rooms/lobby/messages?after=2&wait=60", bob, "", "") }()
	require.Eventually(t, func() bool { return h.api.HeldPolls() == 1 }, 10*time.Second, 5*time.Millisecond)
	cancel()
	<-done
	require.Eventually(t, func() bool { return h.api.HeldPolls() == 0 }, 10*time.Second, 5*time.Millisecond)
	h.sessions.Sweep(h.clock.Add(31 * time.Second))
	h.flushPresence()
	log := kinds(h.poll("", "lobby", "").Messages)
	require.Len(t, log, 4)
	require.ElementsMatch(t, []string{"leave:bob:", "leave:alice:"}, log[2:],
		"bob left after the grace; alice too, whose last poll ended as long ago")

	r = h.do("GET", "/api/rooms/lobby/members", "", "", "")
	require.NoError(t, json.Unmarshal(r.body, &mem))
	require.Empty(t, mem.Members)
	require.Equal(t, shared.CodeInvalidRoom, h.do("GET", "/api/rooms/-x/members", "", "", "").errCode(t))
}

func TestSessionExpiryLogsLeave(t *testing.T) {
	h := newHarness(t, func(s *settings) { s.session.TTL = 2 * time.Minute })
	tok := h.join("alice")
	h.poll(tok, "lobby", "")
	h.sessions.Sweep(h.clock.Add(2*time.Minute + time.Second))
	h.flushPresence()
	require.Equal(t, []string{"join:alice:", "leave:alice:"}, kinds(h.poll("", "lobby", "").Messages))
	r := h.do("POST", "/api/rooms/lobby/messages", tok, jsonType, `{"text":"late"}`)
	require.Equal(t, http.StatusUnauthorized, r.status)
	require.Equal(t, shared.CodeUnknownToken, r.errCode(t))
	r = h.do("GET", "/api/rooms/lobby/messages", tok, "", "")
	require.Equal(t, shared.CodeUnknownToken, r.errCode(t), "a poll with an expired token is told to join again")
	h.join("alice")
}

func TestDrainAnswersHeldPolls(t *testing.T) {
	h := newHarness(t)
	done := make(chan reply, 1)
	go func() { done <- h.do("GET", "/api/rooms/lobby/messages?after=0&wait=60", "", "", "") }()
	require.Eventually(t, func() bool { return h.api.HeldPolls() == 1 }, 10*time.Second, 5*time.Millisecond)
	h.hub.Drain()
	select {
	case r := <-done:
		require.Equal(t, http.StatusOK, r.status)
		require.Contains(t, string(r.body), `"messages":[]`)
	case <-time.After(10 * time.Second):
		t.Fatal("held poll not answered on drain")
	}
}

func TestNotFoundAndMethodNotAllowedAreJSON(t *testing.T) {
	h := newHarness(t)
	r := h.do("GET", "/api/nope", "", "", "")
	require.Equal(t, http.StatusNotFound, r.status)
	require.Equal(t, shared.CodeNotFound, r.errCode(t))
	r = h.do("PUT", "/api/session", "", "", "")
	require.Equal(t, http.StatusMethodNotAllowed, r.status)
	require.Equal(t, shared.CodeMethodNotAllowed, r.errCode(t))
	require.Equal(t, "POST, DELETE", r.header.Get("Allow"))
	r = h.do("DELETE", "/api/rooms/lobby/messages", "", "", "")
	require.Equal(t, http.StatusMethodNotAllowed, r.status)
	r = h.do("GET", "/anything/else", "", "", "")
	require.Equal(t, "ui", string(r.body), "the rest goes to the UI")
}

// brokenStore fails every append, as a full or failed disk would.
type brokenStore struct{ queue.Store }

func (brokenStore) Append(context.Context, []shared.Message) ([]queue.Result, error) {
	return nil, errors.New("no space left on device")
}

func TestStoreFailureIs503AndOthersKeepServing(t *testing.T) {
	h := newHarness(t, func(s *settings) { s.store = brokenStore{memstore.New(0)} })
	tok := h.join("alice")
	r := h.do("POST", "/api/rooms/lobby/messages", tok, jsonType, `{"text":"lost?","client_msg_id":"k1"}`)
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	require.Equal(t, shared.CodeUnavailable, r.errCode(t))
	require.NotEmpty(t, r.header.Get("Retry-After"))
	require.NotContains(t, string(r.body), "no space", "operators' details stay in the log")
	h.poll("", "lobby", "")
	require.Equal(t, http.StatusOK, h.do("GET", "/healthz", "", "", "").status)
}

// roomlessStore cannot create or load a room, as a failed disk would.
type roomlessStore struct{ queue.Store }

func (roomlessStore) LoadRoom(context.Context, string) (queue.RoomState, error) {
	return queue.RoomState{}, errors.New("input/output error")
}

// TestRoomCreationStoreFailureIs503: issue 8 saw 500 internal where the
// docs promise 503 unavailable with Retry-After. Every way of creating a
// room (poll, send, the textbook's endpoints) answers it.
func TestRoomCreationStoreFailureIs503(t *testing.T) {
	h := newHarness(t, func(s *settings) { s.store = roomlessStore{memstore.New(0)} })
	tok := h.join("alice")
	for _, c := range []struct{ method, path, token, ctype, body string }{
		{"GET", "/api/rooms/fresh/messages?wait=0", "", "", ""},
		{"GET", "/api/rooms/fresh/messages?wait=5", tok, "", ""},
		{"POST", "/api/rooms/other/messages", tok, jsonType, `{"text":"hi"}`},
		{"POST", "/send_msg/", "", formType, "content=hi"},
		{"GET", "/get_msg/?name=x", "", "", ""},
	} {
		r := h.do(c.method, c.path, c.token, c.ctype, c.body)
		require.Equal(t, http.StatusServiceUnavailable, r.status, "%s %s: %s", c.method, c.path, r.body)
		require.Equal(t, shared.CodeUnavailable, r.errCode(t), c.path)
		require.NotEmpty(t, r.header.Get("Retry-After"), c.path)
		require.NotContains(t, string(r.body), "input/output", "operators' details stay in the log")
	}
}
