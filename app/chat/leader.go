package chat

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/parley-chat/parley/app/api"
	"github.com/parley-chat/parley/shared"
)

// pollPage is how many messages one poll asks for. A burst or a catch-up
// comes in several answers then, each decoded and applied in a few
// milliseconds of the browser's one thread, not one answer that holds the
// page for a tenth of a second.
const pollPage = 100

// persistEvery is how often, at most, the leader writes the room cache
// while messages arrive: encoding 200 messages into storage on every poll
// answer of a burst is work no one waits for. The first answer after a
// quiet spell is written at once, so a reload soon after finds it.
const persistEvery = 250 * time.Millisecond

// leader is the side of a Syncer that runs in the one tab holding the
// room's lock: the room's one long poll in this browser, whose answers it
// applies, persists and broadcasts, the member list, and the outbox, which
// it sends alongside the poll.
type leader struct {
	s *Syncer

	mu           sync.Mutex
	persistTimer *time.Timer
	persisted    time.Time
}

// Flush writes the room cache now if a write is pending: the page is going
// away (a reload, a navigation) and a timer would not fire any more.
func (s *Syncer) Flush() {
	s.leadMu.Lock()
	l := s.lead
	s.leadMu.Unlock()
	if l != nil {
		l.flushPersist()
	}
}

// persistSoon writes the room cache now, or within persistEvery of the
// last write, once however many answers come meanwhile.
func (l *leader) persistSoon() {
	l.mu.Lock()
	if l.persistTimer != nil {
		l.mu.Unlock()
		return
	}
	wait := persistEvery - time.Since(l.persisted)
	if wait <= 0 {
		l.persisted = time.Now()
		l.mu.Unlock()
		l.s.yield()
		l.persist()
		return
	}
	l.persistTimer = time.AfterFunc(wait, func() {
		l.s.yield()
		l.mu.Lock()
		if l.persistTimer == nil {
			// flushPersist wrote it meanwhile.
			l.mu.Unlock()
			return
		}
		l.persistTimer = nil
		l.persisted = time.Now()
		l.mu.Unlock()
		l.persist()
	})
	l.mu.Unlock()
}

// flushPersist writes a pending room cache now (the leader stops).
func (l *leader) flushPersist() {
	l.mu.Lock()
	t := l.persistTimer
	l.persistTimer = nil
	l.mu.Unlock()
	if t != nil {
		// Written here even when the timer fired: its func may be waiting
		// for its turn, and finds the timer gone.
		t.Stop()
		l.persist()
	}
}

// run polls until ctx ends, with the outbox sent by a second goroutine.
func (l *leader) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		l.flushLoop(ctx)
	}()
	defer wg.Wait()
	defer l.flushPersist()

	s := l.s
	b := Backoff{Base: s.cfg.BackoffBase, Max: s.cfg.BackoffMax, Rand: s.cfg.Rand}
	needMembers := true
	notify(s.flushKick)
	for ctx.Err() == nil {
		sess, ok := s.cfg.Sessions.Get()
		if !ok {
			l.setNeedJoin(shared.CodeUnauthorized)
			if !s.sleep(ctx, time.Minute) {
				return
			}
			continue
		}
		req := s.state.pollRequest(s.cfg.PollWait, pollPage)
		// A deadline beyond the server's wait catches a connection that
		// died without an error (a sleeping laptop, a silent proxy).
		pctx, pcancel := context.WithTimeout(ctx, time.Duration(s.cfg.PollWait+15)*time.Second)
		resp, err := s.cfg.API.Poll(pctx, sess.Token, s.cfg.Room, req)
		pcancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, context.DeadlineExceeded) {
				err = &api.NetError{Err: err}
			}
			if !l.pollFailed(ctx, err, sess, &b) {
				return
			}
			continue
		}
		wasDown := s.state.connState() != Connected
		b.Reset()
		l.setNeedJoin("")
		s.setConn(Connected, true)

		s.yield()
		res := s.received(resp)
		// Messages this tab already had (its own sends, inserted from the
		// send's answer) still move the cursor: other tabs and the cache
		// need the batch too.
		if len(resp.Messages) > 0 || res.Reset || resp.Gap {
			s.yield()
			s.post(batchEvent{Resp: resp})
			l.persistSoon()
		}
		if needMembers || wasDown || hasPresence(res.Added) {
			needMembers = !l.refreshMembers(ctx)
		}
		if wasDown {
			notify(s.flushKick)
		}
	}
}

func hasPresence(msgs []shared.Message) bool {
	for _, m := range msgs {
		if m.Kind == shared.KindJoin || m.Kind == shared.KindLeave {
			return true
		}
	}
	return false
}

// persist writes the recent messages and the cursor for the next start.
// Only the leader writes, so tabs never overwrite a newer cache with an
// older one. A full storage only costs the next start its instant history.
func (l *leader) persist() {
	s := l.s
	_ = setJSON(s.cfg.Store, keyRoomCache+s.cfg.Room, s.state.cache(s.cfg.CacheMessages))
}

func (l *leader) setNeedJoin(code string) {
	s := l.s
	if s.state.setNeedJoin(code) {
		s.post(s.state.status())
		s.changed()
	}
}

// pollFailed decides what a failed poll means and waits as needed; false
// means stop.
func (l *leader) pollFailed(ctx context.Context, err error, sess Session, b *Backoff) bool {
	s := l.s
	switch code := api.Code(err); {
	case code == shared.CodeUnknownToken || code == shared.CodeUnauthorized:
		if _, rerr := s.cfg.Sessions.Renew(ctx, s.cfg.API, sess); rerr != nil {
			if c := api.Code(rerr); c == shared.CodeNameTaken || c == shared.CodeInvalidName || c == shared.CodeUnauthorized {
				l.setNeedJoin(c)
				return s.sleep(ctx, time.Minute)
			}
			return l.retryLater(ctx, rerr, b)
		}
		return true
	case code == shared.CodeInvalidRoom:
		s.state.setFatal(code)
		s.changed()
		<-ctx.Done()
		return false
	case code == shared.CodeInvalidParam:
		// The cursor is not acceptable any more: start again from the latest.
		s.state.forgetCursor()
		return l.retryLater(ctx, err, b)
	default:
		return l.retryLater(ctx, err, b)
	}
}

func (l *leader) retryLater(ctx context.Context, err error, b *Backoff) bool {
	s := l.s
	d := b.Next()
	if ra := api.RetryAfter(err); ra > d {
		d = ra
	}
	fails := s.state.failures()
	if api.IsNetwork(err) {
		fails = s.state.netFailed()
	}
	was := s.state.connState()
	// One lost request is a blip worth "reconnecting"; a second in a row,
	// or the browser saying so, means the server is out of reach. Once
	// offline, stay offline until a request succeeds: a flickering
	// indicator says nothing.
	state := Reconnecting
	if fails >= 2 || !s.cfg.Online() || (was == Offline && api.IsNetwork(err)) {
		state = Offline
	}
	s.setConn(state, true)
	return s.sleep(ctx, d)
}

// refreshMembers fetches the member list and tells the other tabs.
func (l *leader) refreshMembers(ctx context.Context) bool {
	s := l.s
	m, err := fetchMembers(ctx, s.cfg.API, s.cfg.Room)
	if err != nil {
		return false
	}
	s.state.setMembers(m)
	s.post(membersEvent{Members: m})
	s.changed()
	return true
}

func fetchMembers(ctx context.Context, a API, room string) ([]shared.Member, error) {
	mctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	resp, err := a.Members(mctx, room)
	return resp.Members, err
}

// flushLoop sends the outbox in order while this tab leads. Besides the
// kicks, it looks at the outbox every few seconds: the outbox is the
// source of truth, the kicks only make it prompt.
func (l *leader) flushLoop(ctx context.Context) {
	s := l.s
	b := Backoff{Base: s.cfg.BackoffBase, Max: s.cfg.BackoffMax, Rand: s.cfg.Rand}
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.flushKick:
		case <-tick.C:
		}
		if d, retry := l.flush(ctx, &b); retry {
			time.AfterFunc(d, func() { notify(s.flushKick) })
		}
	}
}

// flush sends pending items one at a time, oldest first, each with its
// client_msg_id. It stops at a temporary failure and reports when to retry;
// an item the server refuses is marked failed and the next one goes.
func (l *leader) flush(ctx context.Context, b *Backoff) (time.Duration, bool) {
	s := l.s
	for ctx.Err() == nil {
		it, ok := s.outbox.NextPending()
		if !ok {
			b.Reset()
			return 0, false
		}
		if s.state.hasClientMsgID(it.ID) {
			s.outbox.Remove(it.ID)
			s.outboxChanged()
			continue
		}
		sess, ok := s.cfg.Sessions.Get()
		if !ok {
			return 0, false
		}
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		msg, err := s.cfg.API.Send(sctx, sess.Token, s.cfg.Room, shared.SendRequest{Text: it.Text, ClientMsgID: it.ID})
		cancel()
		if ctx.Err() != nil {
			return 0, false
		}
		switch code := api.Code(err); {
		case err == nil:
			b.Reset()
			s.outbox.Remove(it.ID)
			s.state.insert(msg)
			s.post(sentEvent{Msg: msg})
			s.changed()
			// Out of the outbox, the message must be in the cache.
			l.persistSoon()
		case code == shared.CodeUnknownToken || code == shared.CodeUnauthorized:
			if _, rerr := s.cfg.Sessions.Renew(ctx, s.cfg.API, sess); rerr != nil {
				// The poll loop meets the same error and asks the user.
				return b.Next(), true
			}
		case api.Temporary(err) || errors.Is(err, context.DeadlineExceeded):
			if api.IsNetwork(err) {
				// The poll notices too and kicks the outbox once it is back.
				notify(s.wake)
			}
			d := b.Next()
			if ra := api.RetryAfter(err); ra > d {
				d = ra
			}
			return d, true
		default:
			s.outbox.SetState(it.ID, ItemFailed, code)
			s.outboxChanged()
		}
	}
	return 0, false
}
