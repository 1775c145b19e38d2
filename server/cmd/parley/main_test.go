package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/parley-chat/parley/server/cmd/internal/loadkit"
	"github.com/parley-chat/parley/server/internal/testlog"
	"github.com/parley-chat/parley/server/internal/tier"
	"github.com/parley-chat/parley/shared"
)

// parleyBin is the real binary, built once by TestMain in the integration
// tier (package tier): the durability tests must kill a process that owns
// the bolt file, which no in-process server can stand in for.
var parleyBin string

func TestMain(m *testing.M) {
	if !tier.On() {
		// The subprocess tests skip (startParley); the rest run in process.
		goleak.VerifyTestMain(m)
		return
	}
	dir, err := os.MkdirTemp("", "parley-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		os.Exit(1)
	}
	parleyBin = filepath.Join(dir, "parley")
	args := []string{"build", "-o", parleyBin}
	if raceEnabled() {
		// A race in the server under kill and restart then fails the test
		// (the race detector makes a graceful exit return 66).
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build parley: %v\n%s", err, out)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		_ = os.RemoveAll(dir)
		os.Exit(code)
	}))
}

// raceEnabled reports whether this test binary was built with -race, so the
// server binary can be built the same way.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// ---- the real binary as a subprocess ----

// proc is one run of the parley binary.
type proc struct {
	cmd    *exec.Cmd
	url    string // http://127.0.0.1:PORT
	exited chan struct{}
	err    error // cmd.Wait's answer; read only after exited is closed

	mu  sync.Mutex
	log bytes.Buffer
}

// startParley runs the binary with args and returns once /healthz answers.
// The process is killed when the test ends, if it still runs.
func startParley(t *testing.T, args ...string) *proc {
	t.Helper()
	tier.Require(t, "the parley binary as a subprocess")
	cmd := exec.Command(parleyBin, args...)
	// The developer's own PARLEY_* settings must not change what is tested.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PARLEY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &proc{cmd: cmd, exited: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log.WriteString(line + "\n")
			p.mu.Unlock()
			if a, ok := loadkit.ListenAddr(line); ok {
				select {
				case addr <- a:
				default:
				}
			}
		}
		// Keep reading after a scan error so that the child never blocks
		// on a full pipe; Wait must come after the last read.
		_, _ = io.Copy(io.Discard, stderr)
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("parley %s stderr:\n%s", strings.Join(args, " "), p.logText())
		}
	})
	select {
	case a := <-addr:
		p.url = "http://" + a
	case <-p.exited:
		t.Fatalf("parley exited before listening: %v\n%s", p.err, p.logText())
	case <-time.After(30 * time.Second):
		t.Fatalf("parley did not log its address within 30s:\n%s", p.logText())
	}
	waitHealthy(t, p.url)
	return p
}

func waitHealthy(t *testing.T, base string) {
	t.Helper()
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := hc.Get(base + "/healthz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s/healthz never answered 200 (last error %v)", base, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *proc) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// kill sends SIGKILL, as a power cut would stop the server, and waits for
// the process to be gone.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL) // fails only if it already exited
	<-p.exited
}

// ---- API helpers; safe to call from any goroutine (no require inside) ----

func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 32}
	t.Cleanup(tr.CloseIdleConnections)
	// A browser's cookie jar: the textbook's cursors belong to a browser
	// (its cookie) as well as a name.
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	// Longer than the longest poll a test holds, so only a dead server ends
	// a request early.
	return &http.Client{Transport: tr, Jar: jar, Timeout: 90 * time.Second}
}

// apiCall sends a request and decodes a JSON answer into out when the status
// is 2xx. A transport or decoding error means the answer never fully came.
func apiCall(ctx context.Context, hc *http.Client, method, u, token string, body any, out any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 == 2 && out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return nil, fmt.Errorf("%s %s: decode %q: %w", method, u, data, err)
		}
	}
	return resp, nil
}

func createSession(t *testing.T, hc *http.Client, base, name string) string {
	t.Helper()
	var sr shared.SessionResponse
	resp, err := apiCall(context.Background(), hc, http.MethodPost, base+"/api/session", "", shared.SessionRequest{Name: name}, &sr)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "POST /api/session %q", name)
	require.NotEmpty(t, sr.Token)
	return sr.Token
}

// sendResult is the outcome of one send, retried while rate limited.
type sendResult struct {
	status int // 0 when the answer never came (err set)
	msg    shared.Message
	err    error
}

// send posts one message, waiting out 429s (the server allows 5 sends/s
// per session after a burst of 20) and retrying with the same client_msg_id.
func send(ctx context.Context, hc *http.Client, base func() string, token, room, text, id string) sendResult {
	for {
		var m shared.Message
		u := base() + "/api/rooms/" + room + "/messages"
		resp, err := apiCall(ctx, hc, http.MethodPost, u, token, shared.SendRequest{Text: text, ClientMsgID: id}, &m)
		if err != nil {
			return sendResult{err: err}
		}
		if resp.StatusCode != http.StatusTooManyRequests {
			return sendResult{status: resp.StatusCode, msg: m}
		}
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		select {
		case <-time.After(time.Duration(max(secs, 1)) * time.Second):
		case <-ctx.Done():
			return sendResult{err: ctx.Err()}
		}
	}
}

func poll(ctx context.Context, hc *http.Client, base, room string, q shared.PollRequest) (shared.PollResponse, int, error) {
	var pr shared.PollResponse
	resp, err := apiCall(ctx, hc, http.MethodGet, base+"/api/rooms/"+room+"/messages?"+q.Query().Encode(), "", nil, &pr)
	if err != nil {
		return pr, 0, err
	}
	return pr, resp.StatusCode, nil
}

// readAll returns a room's whole log by paging forward with short polls.
func readAll(t *testing.T, hc *http.Client, base, room, epoch string) []shared.Message {
	t.Helper()
	var all []shared.Message
	var after uint64
	for {
		pr, status, err := poll(context.Background(), hc, base, room, shared.PollRequest{
			After: shared.Ptr(after), Epoch: epoch, Wait: shared.Ptr(0), Limit: shared.Ptr(shared.MaxLimit),
		})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, epoch, pr.Epoch, "epoch changed")
		require.False(t, pr.Reset, "reset while reading the log after %d", after)
		require.False(t, pr.Gap, "gap while reading the log after %d", after)
		if len(pr.Messages) == 0 {
			return all
		}
		all = append(all, pr.Messages...)
		after = pr.Next
	}
}

// requireDense checks that log holds seqs 1..len(log) in order, each once.
func requireDense(t *testing.T, log []shared.Message) {
	t.Helper()
	for i, m := range log {
		require.Equal(t, uint64(i+1), m.Seq, "log position %d", i)
	}
}

func requireSameMessage(t *testing.T, want, got shared.Message, msgAndArgs ...any) {
	t.Helper()
	require.Equal(t, want.Seq, got.Seq, msgAndArgs...)
	require.Equal(t, want.Room, got.Room, msgAndArgs...)
	require.Equal(t, want.Kind, got.Kind, msgAndArgs...)
	require.Equal(t, want.Author, got.Author, msgAndArgs...)
	require.Equal(t, want.Text, got.Text, msgAndArgs...)
	require.Equal(t, want.ClientMsgID, got.ClientMsgID, msgAndArgs...)
	require.True(t, want.SentAt.Equal(got.SentAt), "sent_at %v != %v %v", want.SentAt, got.SentAt, msgAndArgs)
}

// ---- durability ----

// sendLog records what the senders were told, from many goroutines.
type sendLog struct {
	mu       sync.Mutex
	acked    map[string]shared.Message // client_msg_id → the 201's message
	inFlight map[string]string         // client_msg_id → text, answer never came
	failures []string                  // anything else, a failure of the test
	n        atomic.Int64              // len(acked), readable without mu
}

// record notes what the sender of id was told, and reports whether it may
// go on. A request that got no answer while its server was being killed
// (killing) may or may not have been committed: it is in flight.
func (sl *sendLog) record(id, text string, r sendResult, killing bool) bool {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	switch {
	case r.err != nil && killing:
		sl.inFlight[id] = text
	case r.err != nil:
		sl.failures = append(sl.failures, fmt.Sprintf("%s: %v", id, r.err))
	case r.status == http.StatusCreated:
		sl.acked[id] = r.msg
		sl.n.Add(1)
	default:
		sl.failures = append(sl.failures, fmt.Sprintf("%s: status %d", id, r.status))
	}
	return r.err == nil && r.status == http.StatusCreated
}

// poller follows a room like a client: long polls with its cursor and epoch,
// across server restarts (base tells it where the server is now).
type poller struct {
	mu        sync.Mutex
	seen      []shared.Message
	anomalies []string // reset, gap, epoch change, bad next, non-200
	// lastOfFirstRun is the cursor after the last answer of the first run;
	// firstAfterRestart that of the first poll the second run answered (-1
	// before there is one). The kill cannot be timed against the poller's
	// reads (an answer may sit in the socket when the process dies), so the
	// poller notes both itself.
	lastOfFirstRun    uint64
	firstAfterRestart int64
	cursor            atomic.Uint64
}

func (pl *poller) run(ctx context.Context, hc *http.Client, base func() (string, int), room, epoch string) {
	var after uint64
	for ctx.Err() == nil {
		u, gen := base()
		pr, status, err := poll(ctx, hc, u, room, shared.PollRequest{
			After: shared.Ptr(after), Epoch: epoch, Wait: shared.Ptr(shared.DefaultWaitSeconds), Limit: shared.Ptr(7),
		})
		if err != nil {
			// The server is down (killed, not yet restarted): keep the
			// cursor and retry, as a client would.
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
			continue
		}
		pl.mu.Lock()
		if gen == 2 && pl.firstAfterRestart < 0 {
			pl.firstAfterRestart = int64(after)
		}
		switch {
		case status != http.StatusOK:
			pl.anomalies = append(pl.anomalies, fmt.Sprintf("after=%d: status %d", after, status))
		case pr.Reset || pr.Gap || pr.Epoch != epoch:
			pl.anomalies = append(pl.anomalies, fmt.Sprintf("after=%d: reset=%v gap=%v epoch=%q", after, pr.Reset, pr.Gap, pr.Epoch))
		case len(pr.Messages) > 0 && pr.Next != pr.Messages[len(pr.Messages)-1].Seq:
			pl.anomalies = append(pl.anomalies, fmt.Sprintf("after=%d: next=%d but last seq %d", after, pr.Next, pr.Messages[len(pr.Messages)-1].Seq))
		case len(pr.Messages) == 0 && pr.Next != after:
			pl.anomalies = append(pl.anomalies, fmt.Sprintf("after=%d: empty answer moved next to %d", after, pr.Next))
		default:
			pl.seen = append(pl.seen, pr.Messages...)
			after = pr.Next
			pl.cursor.Store(after)
			if gen == 1 {
				pl.lastOfFirstRun = after
			}
		}
		pl.mu.Unlock()
		if status != http.StatusOK {
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// TestKillNineKeepsAcknowledgedMessages is the promise of the bolt store: a
// 201 means on disk. Several senders run concurrently while the server gets
// SIGKILL; after a restart on the same file every acknowledged message is
// there once with its seq, the epoch is the same, a poller continues from
// its old cursor, and resends are answered from the store, not duplicated.
func TestKillNineKeepsAcknowledgedMessages(t *testing.T) {
	const (
		room      = "durable"
		senders   = 6
		perSender = 200 // far more than are sent before the kill
		killAfter = 60  // acknowledged messages before SIGKILL
	)
	dir := t.TempDir()
	data := filepath.Join(dir, "parley.db")
	args := []string{"-store", "bolt", "-data", data, "-addr", "127.0.0.1:0", "-web", dir}
	hc := newClient(t)

	var (
		baseMu sync.Mutex
		cur    = startParley(t, args...)
		gen    = 1
	)
	base := func() (string, int) {
		baseMu.Lock()
		defer baseMu.Unlock()
		return cur.url, gen
	}
	baseURL := func() string { u, _ := base(); return u }

	first, status, err := poll(context.Background(), hc, cur.url, room, shared.PollRequest{})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	require.Empty(t, first.Messages)
	epoch := first.Epoch
	require.NotEmpty(t, epoch)

	pollCtx, stopPoll := context.WithCancel(context.Background())
	defer stopPoll()
	pl := &poller{firstAfterRestart: -1}
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		pl.run(pollCtx, hc, base, room, epoch)
	}()

	tokens := make([]string, senders)
	for i := range tokens {
		tokens[i] = createSession(t, hc, cur.url, fmt.Sprintf("sender-%d", i))
	}
	sl := &sendLog{acked: map[string]shared.Message{}, inFlight: map[string]string{}}
	var killed atomic.Bool
	sendCtx, stopSend := context.WithCancel(context.Background())
	defer stopSend()
	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() {
			for j := range perSender {
				id, text := fmt.Sprintf("s%d-%03d", i, j), fmt.Sprintf("message %d from sender %d 😀", j, i)
				r := send(sendCtx, hc, baseURL, tokens[i], room, text, id)
				if !sl.record(id, text, r, killed.Load()) {
					return
				}
			}
		})
	}

	// Kill in the middle of the sending, once the poller has followed some
	// of it, so that resuming with an old cursor is actually exercised.
	require.Eventually(t, func() bool {
		return sl.n.Load() >= killAfter && pl.cursor.Load() > 0
	}, 20*time.Second, time.Millisecond, "senders or poller made no progress")
	killed.Store(true)
	cur.kill()
	wg.Wait()

	sl.mu.Lock()
	require.Empty(t, sl.failures)
	acked := sl.acked
	inFlight := sl.inFlight
	sl.mu.Unlock()
	require.GreaterOrEqual(t, len(acked), killAfter)
	require.Less(t, len(acked), senders*perSender, "every message was sent before the kill; the kill was not in the middle")
	pl.mu.Lock()
	seenBeforeKill := append([]shared.Message(nil), pl.seen...)
	pl.mu.Unlock()
	t.Logf("killed with %d acknowledged, %d in flight; the poller had %d", len(acked), len(inFlight), len(seenBeforeKill))

	// Restart on the same file; the port may differ, the poller follows.
	p2 := startParley(t, args...)
	baseMu.Lock()
	cur, gen = p2, 2
	baseMu.Unlock()

	log := readAll(t, hc, p2.url, room, epoch)
	requireDense(t, log)
	byID := map[string]shared.Message{}
	for _, m := range log {
		require.Equal(t, shared.KindText, m.Kind, "seq %d", m.Seq)
		require.Equal(t, room, m.Room)
		_, dup := byID[m.ClientMsgID]
		require.False(t, dup, "client_msg_id %q stored twice", m.ClientMsgID)
		byID[m.ClientMsgID] = m
	}
	for id, want := range acked {
		got, ok := byID[id]
		require.True(t, ok, "acknowledged %q (seq %d) lost by the kill", id, want.Seq)
		requireSameMessage(t, want, got, id)
	}
	for _, m := range seenBeforeKill {
		require.LessOrEqual(t, m.Seq, uint64(len(log)), "seq %d was delivered before the kill but is not in the log", m.Seq)
		requireSameMessage(t, m, log[m.Seq-1], "seen by the poller before the kill")
	}
	// Only messages that were acknowledged or in flight can be in the log.
	for id := range byID {
		_, a := acked[id]
		_, f := inFlight[id]
		require.True(t, a || f, "%q is in the log but was never sent", id)
	}

	// Resend after the restart with the same sessions (they are kept in
	// the bolt file too): idempotency lives in the store, keyed by room,
	// author and id.
	for i := range senders {
		tok := tokens[i]
		var ids []string
		for j := range perSender {
			id := fmt.Sprintf("s%d-%03d", i, j)
			if _, ok := acked[id]; ok {
				ids = append(ids, id)
			}
		}
		// The first and the last acknowledged, then whatever was in flight.
		if len(ids) > 2 {
			ids = []string{ids[0], ids[len(ids)-1]}
		}
		for _, id := range ids {
			r := send(context.Background(), hc, baseURL, tok, room, "different text, same id", id)
			require.NoError(t, r.err)
			require.Equal(t, http.StatusOK, r.status, "resend of acknowledged %q", id)
			requireSameMessage(t, acked[id], r.msg, "resend of %q", id)
		}
		for id, text := range inFlight {
			if !strings.HasPrefix(id, fmt.Sprintf("s%d-", i)) {
				continue
			}
			r := send(context.Background(), hc, baseURL, tok, room, text, id)
			require.NoError(t, r.err)
			if m, stored := byID[id]; stored {
				require.Equal(t, http.StatusOK, r.status, "resend of in-flight %q that was committed", id)
				requireSameMessage(t, m, r.msg, id)
			} else {
				require.Equal(t, http.StatusCreated, r.status, "resend of in-flight %q that was not committed", id)
				require.Greater(t, r.msg.Seq, uint64(len(log)))
			}
		}
		// And new messages, which the poller must receive after the
		// restart.
		for j := range 3 {
			r := send(context.Background(), hc, baseURL, tok, room, fmt.Sprintf("after restart %d from sender %d", j, i), fmt.Sprintf("r%d-%d", i, j))
			require.NoError(t, r.err)
			require.Equal(t, http.StatusCreated, r.status)
		}
	}

	final := readAll(t, hc, p2.url, room, epoch)
	requireDense(t, final)
	require.Greater(t, len(final), len(log))
	for i, m := range log {
		requireSameMessage(t, m, final[i], "restart must not rewrite history")
	}
	ids := map[string]bool{}
	for _, m := range final {
		require.False(t, ids[m.ClientMsgID], "client_msg_id %q stored twice", m.ClientMsgID)
		ids[m.ClientMsgID] = true
	}
	for id := range inFlight {
		require.True(t, ids[id], "in-flight %q missing after its resend", id)
	}

	require.Eventually(t, func() bool { return pl.cursor.Load() >= uint64(len(final)) },
		20*time.Second, 5*time.Millisecond, "the poller did not catch up after the restart")
	stopPoll()
	<-pollDone
	pl.mu.Lock()
	defer pl.mu.Unlock()
	require.Empty(t, pl.anomalies)
	require.Positive(t, pl.lastOfFirstRun)
	require.Equal(t, int64(pl.lastOfFirstRun), pl.firstAfterRestart, "the poller must resume with its old cursor")
	require.Len(t, pl.seen, len(final), "the poller saw a different number of messages than the log holds")
	for i, m := range pl.seen {
		requireSameMessage(t, final[i], m, "poller message %d", i)
	}
}

// TestSIGTERMAnswersHeldPollsAndExitsZero checks the graceful path: held
// polls are answered at once (empty, so clients re-poll elsewhere), the
// process exits 0 promptly, and what was sent survives the restart.
func TestSIGTERMAnswersHeldPollsAndExitsZero(t *testing.T) {
	const (
		room = "graceful"
		held = 5
	)
	dir := t.TempDir()
	data := filepath.Join(dir, "parley.db")
	// Polls without a session may take all but a quarter of -max-polls:
	// held+1 leaves exactly held slots for these anonymous polls, which lets
	// the test know for certain that every poll is held by the server
	// before the signal: one more is refused with 503.
	args := []string{"-store", "bolt", "-data", data, "-addr", "127.0.0.1:0", "-web", dir, "-max-polls", strconv.Itoa(held + 1)}
	hc := newClient(t)
	p := startParley(t, args...)
	baseURL := func() string { return p.url }

	tok := createSession(t, hc, p.url, "terry")
	var sent []shared.Message
	for i := range 5 {
		r := send(context.Background(), hc, baseURL, tok, room, fmt.Sprintf("before the signal %d", i), fmt.Sprintf("g%d", i))
		require.NoError(t, r.err)
		require.Equal(t, http.StatusCreated, r.status)
		sent = append(sent, r.msg)
	}
	pr, _, err := poll(context.Background(), hc, p.url, room, shared.PollRequest{})
	require.NoError(t, err)
	epoch := pr.Epoch
	last := sent[len(sent)-1].Seq

	type answer struct {
		pr     shared.PollResponse
		status int
		err    error
	}
	answers := make(chan answer, held)
	for range held {
		go func() {
			for {
				pr, status, err := poll(context.Background(), hc, p.url, room, shared.PollRequest{
					After: shared.Ptr(last), Epoch: epoch, Wait: shared.Ptr(shared.MaxWaitSeconds),
				})
				if err == nil && status == http.StatusServiceUnavailable {
					// The probe below took the slot for its second.
					time.Sleep(10 * time.Millisecond)
					continue
				}
				answers <- answer{pr, status, err}
				return
			}
		}()
	}
	require.Eventually(t, func() bool {
		// A probe that is held means a slot is still free: it answers
		// after its one second, then backs off so that the polls, which
		// retry sooner, take the slots. Probes never overlap, so a 503
		// means all the slots are held by the polls.
		_, status, err := poll(context.Background(), hc, p.url, room, shared.PollRequest{After: shared.Ptr(last), Wait: shared.Ptr(1)})
		if err == nil && status == http.StatusServiceUnavailable {
			return true
		}
		time.Sleep(100 * time.Millisecond)
		return false
	}, 20*time.Second, 10*time.Millisecond, "the polls were never all held")

	signalled := time.Now()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	for range held {
		select {
		case a := <-answers:
			require.NoError(t, a.err)
			require.Equal(t, http.StatusOK, a.status)
			require.Empty(t, a.pr.Messages)
			require.Equal(t, last, a.pr.Next, "a drained poll keeps the cursor")
			require.False(t, a.pr.Reset)
		case <-time.After(5 * time.Second):
			t.Fatal("a held poll was not answered within 5s of SIGTERM")
		}
	}
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		t.Fatal("parley did not exit within 5s of SIGTERM")
	}
	require.NoError(t, p.err, "exit status after SIGTERM")
	require.Equal(t, 0, p.cmd.ProcessState.ExitCode())
	require.Contains(t, p.logText(), `msg=stopped`)
	t.Logf("exited %v after SIGTERM", time.Since(signalled))

	p2 := startParley(t, args...)
	log := readAll(t, hc, p2.url, room, epoch)
	require.Len(t, log, len(sent))
	for i := range sent {
		requireSameMessage(t, sent[i], log[i])
	}
}

// ---- run and parseConfig, in process ----

func env(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

func TestParseConfigDefaults(t *testing.T) {
	c, err := parseConfig(nil, env(nil), io.Discard)
	require.NoError(t, err)
	require.Equal(t, config{
		addr: "127.0.0.1:8080", store: "bolt", data: "./data/parley.db", web: "./web",
		redis: "redis://127.0.0.1:6379/0", redisPrefix: "parley:", history: 1000, sessionTTL: 2 * time.Minute, maxPolls: 10000, maxPollsPerAddr: 1000, maxConnsPerAddr: 1100, maxRooms: 10000, logLevel: "info",
		readTimeout: 30 * time.Second, sendRate: 5, sessionRate: 1, textbookRate: 1, retainMessages: 100_000, retainAge: 30 * 24 * time.Hour,
		roomIdle: 2 * time.Minute, windowMB: 256, roomRate: 0.2, roomsPerSession: 16,
	}, c)
}

func TestParseConfigEnvFallbackAndFlagsWin(t *testing.T) {
	vars := map[string]string{
		"PARLEY_ADDR":              "127.0.0.1:9999",
		"PARLEY_STORE":             "memory",
		"PARLEY_DATA":              "/tmp/x.db",
		"PARLEY_WEB":               "/srv/web",
		"PARLEY_HISTORY":           "50",
		"PARLEY_SESSION_TTL":       "30s",
		"PARLEY_MAX_POLLS":         "7",
		"PARLEY_MAX_ROOMS":         "8",
		"PARLEY_LOG_LEVEL":         "debug",
		"PARLEY_SEND_RATE":         "50",
		"PARLEY_SESSION_RATE":      "2.5",
		"PARLEY_REDIS":             "redis://10.0.0.1:6379/2",
		"PARLEY_REDIS_PREFIX":      "chat:",
		"PARLEY_TEXTBOOK_RATE":     "0",
		"PARLEY_TRUSTED_ORIGINS":   "https://a.example, https://b.example",
		"PARLEY_ROOM_IDLE":         "30s",
		"PARLEY_WINDOW_MB":         "64",
		"PARLEY_ROOM_RATE":         "1",
		"PARLEY_ROOMS_PER_SESSION": "4",
	}
	c, err := parseConfig(nil, env(vars), io.Discard)
	require.NoError(t, err)
	require.Equal(t, config{
		addr: "127.0.0.1:9999", store: "memory", data: "/tmp/x.db", web: "/srv/web",
		redis: "redis://10.0.0.1:6379/2", redisPrefix: "chat:", history: 50, sessionTTL: 30 * time.Second, maxPolls: 7, maxPollsPerAddr: 1000, maxConnsPerAddr: 1100, maxRooms: 8, logLevel: "debug",
		readTimeout: 30 * time.Second, sendRate: 50, sessionRate: 2.5, textbookRate: 0, origins: "https://a.example, https://b.example", retainMessages: 100_000, retainAge: 30 * 24 * time.Hour,
		roomIdle: 30 * time.Second, windowMB: 64, roomRate: 1, roomsPerSession: 4,
	}, c)
	require.Equal(t, []string{"https://a.example", "https://b.example"}, splitList(c.origins))
	proxies, err := parsePrefixes("10.0.0.0/8, 192.0.2.7,::1, 10.1.2.3/8")
	require.NoError(t, err)
	require.Equal(t, "[10.0.0.0/8 192.0.2.7/32 ::1/128 10.0.0.0/8]", fmt.Sprint(proxies))

	c, err = parseConfig([]string{"-addr", "127.0.0.1:0", "-history", "3", "-store", "bolt"}, env(vars), io.Discard)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:0", c.addr, "a flag beats its variable")
	require.Equal(t, 3, c.history)
	require.Equal(t, "bolt", c.store)
	require.Equal(t, 30*time.Second, c.sessionTTL, "variables still fill the flags not given")
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		vars map[string]string
		want string // in the error
	}{
		{"unknown store", []string{"-store", "sqlite"}, nil, `-store must be bolt, redis or memory, not "sqlite"`},
		{"zero history", []string{"-history", "0"}, nil, "-history must be at least 1"},
		{"history not a number", []string{"-history", "lots"}, nil, `invalid value "lots" for flag -history`},
		{"short ttl", []string{"-session-ttl", "500ms"}, nil, "-session-ttl must be at least 1s"},
		{"ttl without unit", []string{"-session-ttl", "60"}, nil, `invalid value "60" for flag -session-ttl`},
		{"unknown flag", []string{"-port", "80"}, nil, "flag provided but not defined: -port"},
		{"bad variable", nil, map[string]string{"PARLEY_MAX_POLLS": "many"}, `PARLEY_MAX_POLLS="many"`},
		{"bad variable, good flag", []string{"-session-ttl", "1m"}, map[string]string{"PARLEY_SESSION_TTL": "soon"}, `PARLEY_SESSION_TTL="soon"`},
		{"bad store variable", nil, map[string]string{"PARLEY_STORE": "sqlite"}, `not "sqlite"`},
		{"zero max polls", []string{"-max-polls", "0"}, nil, "-max-polls must be at least 1"},
		{"negative max rooms", []string{"-max-rooms", "-3"}, nil, "-max-rooms must be at least 1"},
		{"tiny read timeout", []string{"-read-timeout", "10ms"}, nil, "-read-timeout must be at least 100ms"},
		{"zero send rate", []string{"-send-rate", "0"}, nil, "must be positive"},
		{"negative session rate", nil, map[string]string{"PARLEY_SESSION_RATE": "-1"}, "must be positive"},
		{"zero room rate", []string{"-room-rate", "0"}, nil, "must be positive"},
		{"short room idle", []string{"-room-idle", "10ms"}, nil, "-room-idle must be at least 1s"},
		{"zero rooms per session", []string{"-rooms-per-session", "0"}, nil, "-rooms-per-session at least 1"},
		{"negative textbook rate", []string{"-textbook-rate", "-1"}, nil, "-textbook-rate must not be negative"},
		{"zero conns per addr", []string{"-max-conns-per-addr", "0"}, nil, "-max-conns-per-addr must be at least 1, or -1"},
		{"negative retention", []string{"-retain-age", "-1h"}, nil, "-retain-messages and -retain-age must not be negative"},
		{"bad trusted proxy", []string{"-trusted-proxies", "10.0.0.0/8,proxy.local"}, nil, `-trusted-proxies: "proxy.local" is neither`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig(tc.args, env(tc.vars), io.Discard)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestRunRefusesBadSetup(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(blocker, nil, 0o600))
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"log level", []string{"-store", "memory", "-log-level", "loud"}, "-log-level"},
		{"data dir under a file", []string{"-data", filepath.Join(blocker, "parley.db")}, "create data directory"},
		{"address", []string{"-store", "memory", "-addr", "127.0.0.1:99999"}, "listen"},
		{"redis unreachable", []string{"-store", "redis", "-redis", "redis://127.0.0.1:1/0"}, "-store redis: redis at 127.0.0.1:1"},
		{"redis URL", []string{"-store", "redis", "-redis", "http://x"}, "redis URL"},
		{"flag", []string{"-history", "-1"}, "-history must be at least 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := run(ctx, tc.args, env(nil), io.Discard)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

// inProcess is run() started in this process, as main starts it.
type inProcess struct {
	addr   string // host:port from the "parley listening" log line
	log    *testlog.Buffer
	cancel context.CancelFunc
	done   chan error
}

// startInProcess runs run(ctx, args, getenv) and waits until it logs its
// address. The caller stops it with stop; it is also cancelled at cleanup.
func startInProcess(t *testing.T, args []string, vars map[string]string) *inProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &inProcess{log: &testlog.Buffer{}, cancel: cancel, done: make(chan error, 1)}
	t.Cleanup(cancel)
	go func() { p.done <- run(ctx, args, env(vars), p.log) }()
	require.Eventually(t, func() bool {
		for line := range strings.Lines(p.log.String()) {
			if a, ok := loadkit.ListenAddr(strings.TrimSpace(line)); ok {
				p.addr = a
				return true
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond, "run never logged its address")
	return p
}

// stop cancels run's context, as a signal does, and requires it to return
// nil within 5 s.
func (p *inProcess) stop(t *testing.T) {
	t.Helper()
	p.cancel()
	select {
	case err := <-p.done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return within 5s of its context ending")
	}
}

// TestRunServesAndStopsOnCancel runs the program in process, configured from
// PARLEY_* variables alone, and stops it through its context as main does on
// a signal. goleak in TestMain then checks that run left no goroutine.
func TestRunServesAndStopsOnCancel(t *testing.T) {
	dir := t.TempDir()
	vars := map[string]string{
		"PARLEY_ADDR":  "127.0.0.1:0",
		"PARLEY_STORE": "bolt",
		"PARLEY_DATA":  filepath.Join(dir, "sub", "parley.db"),
		"PARLEY_WEB":   dir,
	}
	p := startInProcess(t, nil, vars)
	base := "http://" + p.addr
	require.Contains(t, p.log.String(), "store=bolt")
	waitHealthy(t, base)

	hc := newClient(t)
	tok := createSession(t, hc, base, "inproc")
	r := send(context.Background(), hc, func() string { return base }, tok, "lobby", "hello", "x1")
	require.NoError(t, r.err)
	require.Equal(t, http.StatusCreated, r.status)
	hc.CloseIdleConnections()

	p.stop(t)
	require.Contains(t, p.log.String(), "msg=stopped")
	_, err := os.Stat(vars["PARLEY_DATA"])
	require.NoError(t, err, "the bolt file is where PARLEY_DATA says")
}

// TestHugeHeaderIs431: issue 8 sent a 900 KB header and it was read and
// held; the server now refuses heads over maxHeaderBytes.
func TestHugeHeaderIs431(t *testing.T) {
	dir := t.TempDir()
	p := startInProcess(t, []string{"-addr", "127.0.0.1:0", "-store", "memory", "-web", dir}, nil)
	base := "http://" + p.addr
	waitHealthy(t, base)

	conn, err := net.Dial("tcp", p.addr)
	require.NoError(t, err)
	defer conn.Close()
	// Write in the background: the server answers before reading it all.
	go func() {
		_, _ = fmt.Fprintf(conn, "GET /api/rooms/lobby/messages?wait=0 HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", 900<<10))
	}()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	status, err := bufio.NewReader(conn).ReadString('\n')
	require.NoError(t, err)
	require.Contains(t, status, " 431 ")

	// A head of ordinary size is served.
	req, err := http.NewRequest("GET", base+"/api/rooms/lobby/messages?wait=0", nil)
	require.NoError(t, err)
	req.Header.Set("X-Fine", strings.Repeat("a", 8<<10))
	resp, err := newClient(t).Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	p.stop(t)
}

// TestMetricsAddress: /metrics is on the main address by default, and only
// on its own with -metrics-addr.
func TestMetricsAddress(t *testing.T) {
	get := func(u string) (int, string) {
		t.Helper()
		resp, err := newClient(t).Get(u)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	dir := t.TempDir()
	p := startInProcess(t, []string{"-addr", "127.0.0.1:0", "-store", "memory", "-web", dir}, nil)
	waitHealthy(t, "http://"+p.addr)
	status, body := get("http://" + p.addr + "/metrics")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "parley_held_polls 0")
	require.Contains(t, body, "parley_store_commit_seconds_bucket")
	p.stop(t)

	p = startInProcess(t, []string{"-addr", "127.0.0.1:0", "-store", "memory", "-web", dir, "-metrics-addr", "127.0.0.1:0"}, nil)
	waitHealthy(t, "http://"+p.addr)
	var metricsAddr string
	for line := range strings.Lines(p.log.String()) {
		if strings.Contains(line, `msg="metrics listening"`) {
			_, metricsAddr, _ = strings.Cut(strings.TrimSpace(line), "addr=")
		}
	}
	require.NotEmpty(t, metricsAddr)
	status, body = get("http://" + metricsAddr + "/metrics")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "parley_sessions 0")
	_, body = get("http://" + p.addr + "/metrics")
	require.NotContains(t, body, "parley_sessions", "not on the public address")
	p.stop(t)
}
