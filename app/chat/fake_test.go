package chat_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/parley-chat/parley/app/api"
	"github.com/parley-chat/parley/shared"
)

// fakeServer is a small in-process stand-in for the Parley API with the
// semantics the Syncer relies on: dense seqs, an epoch, held polls, session
// tokens and idempotent client_msg_ids. It can be taken "down" (every call
// fails like an unreachable server) and restarted (sessions are forgotten,
// the log survives, as with the bolt store).
type fakeServer struct {
	mu       sync.Mutex
	epoch    string
	msgs     []shared.Message
	notify   chan struct{}
	sessions map[string]string // token → name
	byID     map[string]shared.Message
	down     bool
	tokens   int

	// holding counts polls currently held (wait > 0), maxHolding the peak.
	holding, maxHolding int
	polls               int
	// dropAcks makes the next n successful sends lose their answer.
	dropAcks int
	// sendDelay holds every send this long before it is processed.
	sendDelay time.Duration
}

func newFakeServer() *fakeServer {
	return &fakeServer{epoch: "e1", notify: make(chan struct{}), sessions: map[string]string{}, byID: map[string]shared.Message{}}
}

var errDown = &api.NetError{Err: errors.New("connection refused")}

func (f *fakeServer) setDown(down bool) {
	f.mu.Lock()
	f.down = down
	if down {
		// Like a restart: sessions live in memory only.
		f.sessions = map[string]string{}
	}
	close(f.notify)
	f.notify = make(chan struct{})
	f.mu.Unlock()
}

func apiErr(status int, code string) error {
	return &api.StatusError{Status: status, Err: &shared.Error{Code: code, Message: code}}
}

func (f *fakeServer) Join(ctx context.Context, name string) (shared.SessionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return shared.SessionResponse{}, errDown
	}
	for _, n := range f.sessions {
		if n == name {
			return shared.SessionResponse{}, apiErr(409, shared.CodeNameTaken)
		}
	}
	f.tokens++
	tok := "t" + strconv.Itoa(f.tokens)
	f.sessions[tok] = name
	return shared.SessionResponse{Token: tok, Name: name}, nil
}

// appendLocked stores a message; f.mu must be held.
func (f *fakeServer) appendLocked(author, text, cmid string) shared.Message {
	m := shared.Message{Seq: uint64(len(f.msgs) + 1), Room: "lobby", Kind: shared.KindText, Author: author, Text: text, SentAt: time.Now(), ClientMsgID: cmid}
	f.msgs = append(f.msgs, m)
	close(f.notify)
	f.notify = make(chan struct{})
	return m
}

// post appends a message from someone outside the browser under test.
func (f *fakeServer) post(author, text string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.appendLocked(author, text, "")
}

func (f *fakeServer) Send(ctx context.Context, token, room string, req shared.SendRequest) (shared.Message, error) {
	time.Sleep(f.sendDelay)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return shared.Message{}, errDown
	}
	name, ok := f.sessions[token]
	if !ok {
		return shared.Message{}, apiErr(401, shared.CodeUnknownToken)
	}
	if err := req.Normalize(); err != nil {
		return shared.Message{}, &api.StatusError{Status: 400, Err: err.(*shared.Error)}
	}
	key := name + "\x00" + req.ClientMsgID
	m, dup := f.byID[key]
	if !dup {
		m = f.appendLocked(name, req.Text, req.ClientMsgID)
		f.byID[key] = m
	}
	if f.dropAcks > 0 {
		f.dropAcks--
		return shared.Message{}, errDown
	}
	return m, nil
}

func (f *fakeServer) Poll(ctx context.Context, token, room string, req shared.PollRequest) (shared.PollResponse, error) {
	f.mu.Lock()
	f.polls++
	if f.down {
		f.mu.Unlock()
		return shared.PollResponse{}, errDown
	}
	if token != "" {
		if _, ok := f.sessions[token]; !ok {
			f.mu.Unlock()
			return shared.PollResponse{}, apiErr(401, shared.CodeUnknownToken)
		}
	}
	limit := req.LimitOrDefault()
	page := func(from, to int) []shared.Message { // [from, to) by index
		if to-from > limit {
			to = from + limit
		}
		return append([]shared.Message(nil), f.msgs[from:to]...)
	}
	switch {
	case req.Before != nil:
		to := int(*req.Before) - 1
		from := max(0, to-limit)
		defer f.mu.Unlock()
		return shared.PollResponse{Room: room, Epoch: f.epoch, Messages: page(from, to), Next: uint64(len(f.msgs))}, nil
	case req.After == nil || req.Epoch != f.epoch || int(*req.After) > len(f.msgs):
		from := max(0, len(f.msgs)-limit)
		defer f.mu.Unlock()
		return shared.PollResponse{Room: room, Epoch: f.epoch, Messages: page(from, len(f.msgs)), Next: uint64(len(f.msgs)), Reset: req.After != nil}, nil
	}
	after := int(*req.After)
	wait := req.WaitDuration()
	if after == len(f.msgs) && wait > 0 {
		f.holding++
		f.maxHolding = max(f.maxHolding, f.holding)
		ch := f.notify
		f.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		f.mu.Lock()
		f.holding--
		if ctx.Err() != nil {
			f.mu.Unlock()
			return shared.PollResponse{}, ctx.Err()
		}
		if f.down {
			f.mu.Unlock()
			return shared.PollResponse{}, errDown
		}
	}
	defer f.mu.Unlock()
	msgs := page(after, len(f.msgs))
	next := uint64(after + len(msgs))
	return shared.PollResponse{Room: room, Epoch: f.epoch, Messages: msgs, Next: next}, nil
}

func (f *fakeServer) Members(ctx context.Context, room string) (shared.MembersResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return shared.MembersResponse{}, errDown
	}
	var ms []shared.Member
	for _, n := range f.sessions {
		ms = append(ms, shared.Member{Name: n})
	}
	return shared.MembersResponse{Room: room, Members: ms}, nil
}

// texts returns the stored texts in seq order.
func (f *fakeServer) texts() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, m := range f.msgs {
		out = append(out, m.Text)
	}
	return out
}

func (f *fakeServer) peakHolding() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxHolding
}

func msgs(from, to int) []shared.Message {
	var out []shared.Message
	for i := from; i <= to; i++ {
		out = append(out, shared.Message{Seq: uint64(i), Kind: shared.KindText, Author: "a", Text: fmt.Sprint("m", i)})
	}
	return out
}
