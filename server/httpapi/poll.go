package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/parley-chat/parley/server/park"
	"github.com/parley-chat/parley/server/queue"
	"github.com/parley-chat/parley/server/session"
	"github.com/parley-chat/parley/shared"
)

// handlePoll serves GET /api/rooms/{room}/messages: the long poll.
//
// A poll that must wait is registered with the hub as a Receiver and, on
// HTTP/1.1, its connection is parked (package park): the handler returns
// and the answer is written later by whoever delivers it. Elsewhere
// (HTTP/2, tests with a recorder) the handler blocks until the answer.
func (s *Server) handlePoll(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	room, err := roomOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	req, err := parsePollQuery(r.URL.RawQuery)
	if err == nil {
		err = req.Validate()
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	sess, err := s.session(r)
	if err == nil {
		err = s.allowJoin(r, sess, room)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := queue.Query{After: req.After, Before: req.Before, Epoch: req.Epoch, Limit: req.LimitOrDefault()}
	if req.After != nil {
		q.Wait = req.WaitDuration()
	}
	if q.Wait <= 0 {
		if sess != nil {
			if err := s.sessions.Seen(sess, room); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		page, err := s.hub.Read(r.Context(), room, q)
		s.answer(w, r, start, page, err)
		return
	}

	p := &poll{srv: s, start: start}
	hold, err := s.sessions.Hold(sess, room, s.clientKey(r), p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p.hold = hold
	page, waiter, err := s.hub.Watch(r.Context(), room, q, p)
	if err != nil || waiter == nil {
		s.sessions.Done(hold)
		s.answer(w, r, start, page, err)
		return
	}
	p.setWaiter(waiter)
	if s.lot != nil {
		setPageHeaders(w.Header())
		if spot, ok := s.lot.Park(w, r, p); ok {
			p.attach(spot)
			return
		}
	}
	// Held on this goroutine: the request's context tells when the
	// client leaves.
	answer := p.wait()
	select {
	case page = <-answer:
	case <-r.Context().Done():
		if waiter.Cancel() {
			s.sessions.Done(hold)
			return
		}
		page = <-answer
	}
	s.sessions.Done(hold)
	s.answer(w, r, start, page, nil)
}

// answer answers a poll through w (not parked): with its page, or err.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, start time.Time, page *queue.Page, err error) {
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writePage(w, page)
	s.metrics.answered(start, len(page.Messages))
}

// poll is one held poll: the hub's Receiver, the session registry's
// Releaser and, when parked, the park's Gone. Its answer comes exactly once
// (the Waiter guarantees it); mu orders that answer against the handler
// parking the connection.
type poll struct {
	srv   *Server
	hold  *session.Hold
	start time.Time // when the request came, for the answer latency metric

	mu       sync.Mutex
	waiter   *queue.Waiter
	released bool // Release came before the waiter was known
	page     *queue.Page
	spot     *park.Spot
	ch       chan *queue.Page // for a poll held on its handler's goroutine
}

// Deliver is the hub's answer.
func (p *poll) Deliver(page *queue.Page) {
	p.mu.Lock()
	p.page = page
	spot, ch := p.spot, p.ch
	p.mu.Unlock()
	switch {
	case spot != nil:
		p.reply(spot, page)
	case ch != nil:
		ch <- page
	}
}

// wait returns the channel the handler's goroutine receives the answer on.
func (p *poll) wait() <-chan *queue.Page {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ch = make(chan *queue.Page, 1)
	if p.page != nil {
		p.ch <- p.page
	}
	return p.ch
}

// attach hands the poll to its parked connection; an answer that came
// while it was being parked goes out now.
func (p *poll) attach(spot *park.Spot) {
	p.mu.Lock()
	p.spot = spot
	page := p.page
	p.mu.Unlock()
	if page != nil {
		p.reply(spot, page)
	}
}

func (p *poll) reply(spot *park.Spot, page *queue.Page) {
	spot.Reply(page.Encoded(encodePage))
	p.srv.sessions.Done(p.hold)
	p.srv.metrics.answered(p.start, len(page.Messages))
}

func (p *poll) setWaiter(w *queue.Waiter) {
	p.mu.Lock()
	p.waiter = w
	released := p.released
	p.mu.Unlock()
	if released {
		w.Release()
	}
}

// Release is the session registry letting go of this poll.
func (p *poll) Release() {
	p.mu.Lock()
	w := p.waiter
	p.released = w == nil
	p.mu.Unlock()
	if w != nil {
		w.Release()
	}
}

// Gone is the parked client closing its connection.
func (p *poll) Gone() {
	p.mu.Lock()
	w := p.waiter
	p.mu.Unlock()
	if w.Cancel() {
		p.srv.sessions.Done(p.hold)
	}
}

var (
	jsonType = []string{"application/json; charset=utf-8"}
	noStore  = []string{"no-store"}
)

// setPageHeaders sets the headers of a poll answer. The values are shared
// and never modified, so setting them allocates nothing.
func setPageHeaders(h http.Header) {
	h["Content-Type"] = jsonType
	h["Cache-Control"] = noStore
}

// writePage answers a poll through w, with the page's shared encoding.
func writePage(w http.ResponseWriter, page *queue.Page) {
	body := page.Encoded(encodePage)
	h := w.Header()
	setPageHeaders(h)
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// encodePage is the JSON of a poll answer, newline-terminated as the other
// answers are.
func encodePage(p *queue.Page) []byte {
	b, err := json.Marshal(pollResponse(p))
	if err != nil {
		// Messages are validated UTF-8 strings and numbers: cannot fail.
		panic("httpapi: encode page: " + err.Error())
	}
	return append(b, '\n')
}

func pollResponse(p *queue.Page) shared.PollResponse {
	return shared.PollResponse{Room: p.Room, Epoch: p.Epoch, Messages: p.Messages, Next: p.Next, Gap: p.Gap, Reset: p.Reset}
}
