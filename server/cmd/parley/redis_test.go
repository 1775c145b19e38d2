package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parley-chat/parley/server/internal/redistest"
	"github.com/parley-chat/parley/shared"
)

// redisArgs are the flags of an instance on srv.
func redisArgs(t *testing.T, srv *redistest.Server) []string {
	return []string{"-store", "redis", "-redis", srv.URL(), "-addr", "127.0.0.1:0", "-web", t.TempDir(), "-send-rate", "1000"}
}

// Two real instances on one Redis (AOF, appendfsync always), behind no
// load balancer but with pollers that change instance on every poll.
// Senders on both instances at once; one instance is SIGKILLed in the
// middle. Every acknowledged message is read by every poller exactly once,
// in dense seq order, with no reset and no gap, the pollers moving on to
// the survivor with the cursors they had.
func TestRedisTwoInstancesConcurrentSendersAndAKill(t *testing.T) {
	const (
		room      = "shared"
		perSender = 150
		killAfter = 120
	)
	srv := redistest.Start(t, redistest.Options{AOF: true, AppendFsync: "always"})
	args := redisArgs(t, srv)
	a, b := startParley(t, args...), startParley(t, args...)
	urls := []string{a.url, b.url}
	hc := newClient(t)

	first, status, err := poll(context.Background(), hc, b.url, room, shared.PollRequest{})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	epoch := first.Epoch

	pollCtx, stopPoll := context.WithCancel(context.Background())
	defer stopPoll()
	pollers := []*poller{{firstAfterRestart: -1}, {firstAfterRestart: -1}}
	var pwg sync.WaitGroup
	for i, pl := range pollers {
		var n atomic.Int64
		n.Store(int64(i))
		alternate := func() (string, int) { return urls[n.Add(1)%2], 1 }
		pwg.Go(func() { pl.run(pollCtx, hc, alternate, room, epoch) })
	}

	// Four senders, each on one instance until the kill, two of them on
	// the one killed; their sessions were made on the other instance (a
	// token works on every instance).
	sl := &sendLog{acked: map[string]shared.Message{}, inFlight: map[string]string{}}
	var killed atomic.Bool
	var swg sync.WaitGroup
	for i := range 4 {
		base := urls[i%2]
		tok := createSession(t, hc, urls[(i+1)%2], fmt.Sprint("sender-", i))
		swg.Go(func() {
			for j := range perSender {
				id, text := fmt.Sprintf("s%d-%03d", i, j), fmt.Sprintf("message %d from %d", j, i)
				r := send(context.Background(), hc, func() string { return base }, tok, room, text, id)
				if !sl.record(id, text, r, killed.Load() && base == a.url) {
					return
				}
			}
		})
	}
	require.Eventually(t, func() bool { return sl.n.Load() >= killAfter }, 30*time.Second, time.Millisecond)
	killed.Store(true)
	a.kill()
	swg.Wait()

	sl.mu.Lock()
	require.Empty(t, sl.failures)
	acked, inFlight := sl.acked, sl.inFlight
	sl.mu.Unlock()
	require.Less(t, len(acked), 4*perSender, "the kill was not in the middle")

	log := readAll(t, hc, b.url, room, epoch)
	requireDense(t, log)
	byID := map[string]shared.Message{}
	for _, m := range log {
		_, dup := byID[m.ClientMsgID]
		require.False(t, dup, "%q stored twice", m.ClientMsgID)
		byID[m.ClientMsgID] = m
	}
	for id, want := range acked {
		got, ok := byID[id]
		require.True(t, ok, "acknowledged %q lost", id)
		requireSameMessage(t, want, got, id)
	}
	for id := range byID {
		_, isAcked := acked[id]
		_, isInFlight := inFlight[id]
		require.True(t, isAcked || isInFlight, "%q stored but never sent", id)
	}
	t.Logf("%d acknowledged, %d in flight at the kill, %d in the log", len(acked), len(inFlight), len(log))

	for _, pl := range pollers {
		require.Eventually(t, func() bool { return pl.cursor.Load() >= uint64(len(log)) }, 20*time.Second, 5*time.Millisecond,
			"a poller did not catch up on the surviving instance")
	}
	stopPoll()
	pwg.Wait()
	for _, pl := range pollers {
		pl.mu.Lock()
		require.Empty(t, pl.anomalies)
		require.Len(t, pl.seen, len(log))
		for i, m := range pl.seen {
			requireSameMessage(t, log[i], m, "poller message %d", i)
		}
		pl.mu.Unlock()
	}
}

// The same client_msg_id sent by the same author through two instances at
// once is stored once: one 201, one 200 with the original.
func TestRedisSameClientMsgIDThroughTwoInstances(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	args := redisArgs(t, srv)
	a, b := startParley(t, args...), startParley(t, args...)
	hc := newClient(t)
	ta := createSession(t, hc, a.url, "twin")
	tb := ta // the same session, its retry going to the other instance
	for i := range 10 {
		id := fmt.Sprint("retry-", i)
		var ra, rb sendResult
		var wg sync.WaitGroup
		wg.Go(func() { ra = send(context.Background(), hc, func() string { return a.url }, ta, "r", "once", id) })
		wg.Go(func() { rb = send(context.Background(), hc, func() string { return b.url }, tb, "r", "once", id) })
		wg.Wait()
		require.NoError(t, ra.err)
		require.NoError(t, rb.err)
		require.ElementsMatch(t, []int{http.StatusCreated, http.StatusOK}, []int{ra.status, rb.status})
		requireSameMessage(t, ra.msg, rb.msg)
	}
}

// Redis down: sends and polls answer 503 unavailable with Retry-After, and
// /healthz says so; nothing is acknowledged. Redis back (AOF): the same
// epoch, and a poller's old cursor reads on, with no reset.
func TestRedisDownAnswersUnavailable(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AOF: true, AppendFsync: "always"})
	a := startParley(t, redisArgs(t, srv)...)
	hc := newClient(t)
	tok := createSession(t, hc, a.url, "ann")
	here := func() string { return a.url }
	r := send(context.Background(), hc, here, tok, "r", "before", "1")
	require.Equal(t, http.StatusCreated, r.status)
	head, _, err := poll(context.Background(), hc, a.url, "r", shared.PollRequest{})
	require.NoError(t, err)

	srv.Kill()
	unavailable := func(method, path string, body any) bool {
		resp, err := apiCall(context.Background(), hc, method, a.url+path, tok, body, nil)
		return err == nil && resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != ""
	}
	require.True(t, unavailable(http.MethodPost, "/api/rooms/r/messages", shared.SendRequest{Text: "during", ClientMsgID: "2"}))
	require.Eventually(t, func() bool {
		return unavailable(http.MethodGet, "/api/rooms/r/messages?after=1&wait=1", nil)
	}, 10*time.Second, 20*time.Millisecond, "polls answer 503 once the subscription is found lost")
	resp, err := hc.Get(a.url + "/healthz")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)

	srv.Restart()
	waitHealthy(t, a.url)
	r2 := send(context.Background(), hc, here, tok, "r", "after", "3")
	require.Equal(t, http.StatusCreated, r2.status)
	require.EqualValues(t, 2, r2.msg.Seq, "the 503'd send was not stored")
	pr, status, err := poll(context.Background(), hc, a.url, "r", shared.PollRequest{After: shared.Ptr(r.msg.Seq), Epoch: head.Epoch, Wait: shared.Ptr(0)})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	require.False(t, pr.Reset)
	require.Equal(t, head.Epoch, pr.Epoch)
	require.Len(t, pr.Messages, 1)
	requireSameMessage(t, r2.msg, pr.Messages[0])
}

// Redis restarted without persistence: the rooms' logs and the sessions
// are new, and a client polling with its old cursor, on either instance,
// is told to reset and reads the new log.
func TestRedisRestartWithoutPersistenceResets(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	args := redisArgs(t, srv)
	a, b := startParley(t, args...), startParley(t, args...)
	hc := newClient(t)
	tok := createSession(t, hc, a.url, "ann")
	here := func() string { return a.url }
	for i := range 3 {
		require.Equal(t, http.StatusCreated, send(context.Background(), hc, here, tok, "r", "old", fmt.Sprint(i)).status)
	}
	head, _, err := poll(context.Background(), hc, b.url, "r", shared.PollRequest{})
	require.NoError(t, err)
	require.EqualValues(t, 3, head.Next)

	srv.Kill()
	srv.Restart()
	waitHealthy(t, a.url)
	waitHealthy(t, b.url)
	// The sessions went with the data: a client joins again.
	r := send(context.Background(), hc, here, tok, "r", "new", "new")
	require.Equal(t, http.StatusUnauthorized, r.status)
	tok = createSession(t, hc, a.url, "ann")
	m := send(context.Background(), hc, here, tok, "r", "new", "new")
	require.Equal(t, http.StatusCreated, m.status)
	require.EqualValues(t, 1, m.msg.Seq)
	for _, u := range []string{a.url, b.url} {
		require.Eventually(t, func() bool {
			pr, status, err := poll(context.Background(), hc, u, "r", shared.PollRequest{After: shared.Ptr(head.Next), Epoch: head.Epoch, Wait: shared.Ptr(0)})
			return err == nil && status == http.StatusOK && pr.Reset && pr.Epoch != head.Epoch &&
				len(pr.Messages) == 1 && pr.Messages[0].Text == "new"
		}, 5*time.Second, 20*time.Millisecond, "%s resets the old cursor to the new log", u)
	}
}

// Sessions are shared: a token issued by A works on B, a name taken on A is
// taken on B, both list the same members, and a session whose polls
// alternate between the instances joins once.
func TestRedisSessionsAreShared(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	args := redisArgs(t, srv)
	a, b := startParley(t, args...), startParley(t, args...)
	hc := newClient(t)
	tok := createSession(t, hc, a.url, "Erin")
	resp, err := apiCall(context.Background(), hc, http.MethodPost, b.url+"/api/session", "", shared.SessionRequest{Name: "erin"}, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusConflict, resp.StatusCode, "a name taken on A is taken on B")

	m := send(context.Background(), hc, func() string { return b.url }, tok, "lobby", "sent through B", "")
	require.Equal(t, http.StatusCreated, m.status, "a token issued by A works on B")
	require.Equal(t, "Erin", m.msg.Author)

	after, epoch := m.msg.Seq, ""
	for i := range 6 {
		u := []string{a.url, b.url}[i%2]
		var pr shared.PollResponse
		resp, err := apiCall(context.Background(), hc, http.MethodGet,
			u+"/api/rooms/lobby/messages?"+shared.PollRequest{After: shared.Ptr(after), Wait: shared.Ptr(1)}.Query().Encode(), tok, nil, &pr)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		after, epoch = pr.Next, pr.Epoch
	}
	for _, u := range []string{a.url, b.url} {
		var mr shared.MembersResponse
		require.Eventually(t, func() bool {
			resp, err := apiCall(context.Background(), hc, http.MethodGet, u+"/api/rooms/lobby/members", "", nil, &mr)
			return err == nil && resp.StatusCode == http.StatusOK && len(mr.Members) == 1 && mr.Members[0].Name == "Erin"
		}, 5*time.Second, 20*time.Millisecond, "members on %s", u)
	}
	log := readAll(t, hc, a.url, "lobby", epoch)
	var joins int
	for _, m := range log {
		if m.Kind == shared.KindJoin {
			joins++
		}
	}
	require.Equal(t, 1, joins, "one join for polls on two instances: %v", log)

	// The textbook readers' cursors are shared too: a message read through
	// B is not read again through A.
	require.Equal(t, http.StatusOK, legacyGetStatus(t, hc, a.url+"/home/?name=xiaoming"))
	legacySend(t, hc, b.url, "t1")
	require.Equal(t, shared.LegacyMessage{Status: true, Msg: "t1"}, legacyGet(t, hc, b.url, "xiaoming"))
	legacySend(t, hc, b.url, "t2")
	require.Equal(t, shared.LegacyMessage{Status: true, Msg: "t2"}, legacyGet(t, hc, a.url, "xiaoming"))

	resp, err = apiCall(context.Background(), hc, http.MethodDelete, b.url+"/api/session", tok, nil, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	r := send(context.Background(), hc, func() string { return a.url }, tok, "lobby", "after the end", "")
	require.Equal(t, http.StatusUnauthorized, r.status, "a session ended on B is ended on A")
}

// The send limit holds across instances: one session sending through two
// instances gets the burst once (20 at -send-rate 1), not once per instance.
func TestRedisRateLimitAcrossInstances(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	args := []string{"-store", "redis", "-redis", srv.URL(), "-addr", "127.0.0.1:0", "-web", t.TempDir(), "-send-rate", "1"}
	a, b := startParley(t, args...), startParley(t, args...)
	hc := newClient(t)
	tok := createSession(t, hc, a.url, "hasty")
	created, limited := sendAlternately(t, hc, tok, 40, func(i int) (string, string) {
		return []string{a.url, b.url}[i%2] + "/api/rooms/r/messages", fmt.Sprint(i)
	})
	require.GreaterOrEqual(t, created, 20)
	require.LessOrEqual(t, created, 22, "a burst of 20 and about a second's worth, not 20 per instance")
	require.Equal(t, 40, created+limited)
}

// sendAlternately posts n messages with tok, the i-th to the URL and with
// the text that at(i) gives, and counts the 201s and the 429s (each with a
// Retry-After); any other answer fails the test.
func sendAlternately(t *testing.T, hc *http.Client, tok string, n int, at func(i int) (u, text string)) (created, limited int) {
	t.Helper()
	for i := range n {
		u, text := at(i)
		resp, err := apiCall(context.Background(), hc, http.MethodPost, u, tok, shared.SendRequest{Text: text}, nil)
		require.NoError(t, err)
		switch resp.StatusCode {
		case http.StatusCreated:
			created++
		case http.StatusTooManyRequests:
			limited++
			require.NotEmpty(t, resp.Header.Get("Retry-After"))
		default:
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	return created, limited
}
