package httpapi

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/parley-chat/parley/server/queue"
	"github.com/parley-chat/parley/server/session"
	"github.com/parley-chat/parley/shared"
)

// The textbook's endpoints, kept so that its jQuery page works unchanged:
// POST /send_msg/ appends to lobby; GET /get_msg/?name=X returns one text
// message per call from X's own cursor, or status false after 10 s.

type legacySend struct {
	Content string `json:"content" schema:"content"`
	Name    string `json:"name" schema:"name"`
}

// handleLegacySend serves POST /send_msg/.
func (s *Server) handleLegacySend(w http.ResponseWriter, r *http.Request) {
	var req legacySend
	if err := decodeBody(w, r, s.dec, &req); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	author := "anonymous"
	if req.Name != "" {
		name, err := shared.NormalizeName(req.Name)
		if err != nil {
			writeError(w, r, s.log, err)
			return
		}
		author = name
	}
	text, err := shared.NormalizeText(req.Content)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	if _, _, err := s.hub.Append(r.Context(), shared.Message{Room: shared.LegacyRoom, Kind: shared.KindText, Author: author, Text: text}); err != nil {
		writeError(w, r, s.log, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("OK"))
}

// handleLegacyHome serves GET /home/?name=X: it registers X's cursor at the
// head of lobby, as the textbook's home view created X's queue, then sends
// the browser to the app.
func (s *Server) handleLegacyHome(w http.ResponseWriter, r *http.Request) {
	if name, err := shared.NormalizeName(r.URL.Query().Get("name")); err == nil {
		if _, err := s.legacy.cursor(r.Context(), s.hub, name); err != nil {
			writeError(w, r, s.log, err)
			return
		}
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// handleLegacyGet serves GET /get_msg/?name=X.
func (s *Server) handleLegacyGet(w http.ResponseWriter, r *http.Request) {
	name, err := shared.NormalizeName(r.URL.Query().Get("name"))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	until := deadline(r.Context(), shared.LegacyWait)
	ctx, cancel := context.WithDeadline(r.Context(), until)
	defer cancel()
	hold, err := s.sessions.Hold(nil, shared.LegacyRoom, session.ReleaseFunc(cancel))
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	defer s.sessions.Done(hold)
	for {
		cur, err := s.legacy.cursor(ctx, s.hub, name)
		if err != nil {
			break
		}
		resp, err := s.hub.Read(ctx, shared.LegacyRoom, queue.Query{
			After: &cur.seq, Epoch: cur.epoch, Limit: shared.MaxLimit, Wait: time.Until(until),
		})
		if err != nil || len(resp.Messages) == 0 && !resp.Reset {
			break // timeout, client gone, or shutdown: answer "nothing"
		}
		next, msg, found := legacyPick(cur, resp)
		// Advance only if no concurrent request for the same name moved the
		// cursor meanwhile; otherwise read again from where it is now.
		if !s.legacy.advance(name, cur, next) {
			continue
		}
		if found {
			writeJSON(w, http.StatusOK, shared.LegacyMessage{Status: true, Msg: msg})
			return
		}
	}
	writeJSON(w, http.StatusOK, shared.LegacyMessage{Status: false, Msg: ""})
}

// legacyPick chooses the first text message of resp and the cursor that
// follows it; join and leave are skipped, as the textbook had no such thing.
func legacyPick(cur legacyCursor, resp *queue.Page) (next legacyCursor, text string, found bool) {
	next = legacyCursor{epoch: resp.Epoch, seq: resp.Next}
	if resp.Reset {
		// The log was created anew: start again at its head.
		return next, "", false
	}
	for _, m := range resp.Messages {
		if m.Kind == shared.KindText {
			return legacyCursor{epoch: resp.Epoch, seq: m.Seq}, m.Text, true
		}
	}
	return next, "", false
}

type legacyCursor struct {
	epoch string
	seq   uint64
}

// legacyCursors maps textbook names to their cursors in lobby, bounded: the
// least recently used name is forgotten first.
type legacyCursors struct {
	max int

	mu      sync.Mutex
	cursors map[string]*legacyEntry
}

type legacyEntry struct {
	cur  legacyCursor
	used time.Time
}

func newLegacyCursors(max int) *legacyCursors {
	return &legacyCursors{max: max, cursors: make(map[string]*legacyEntry)}
}

// cursor returns name's cursor, registering it at lobby's head when new.
func (c *legacyCursors) cursor(ctx context.Context, hub *queue.Hub, name string) (legacyCursor, error) {
	c.mu.Lock()
	if e := c.cursors[name]; e != nil {
		e.used = time.Now()
		cur := e.cur
		c.mu.Unlock()
		return cur, nil
	}
	c.mu.Unlock()
	head, err := hub.Read(ctx, shared.LegacyRoom, queue.Query{Limit: 1})
	if err != nil {
		return legacyCursor{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.cursors[name]; e != nil { // registered meanwhile
		return e.cur, nil
	}
	if len(c.cursors) >= c.max {
		c.evictOldestLocked()
	}
	cur := legacyCursor{epoch: head.Epoch, seq: head.Next}
	c.cursors[name] = &legacyEntry{cur: cur, used: time.Now()}
	return cur, nil
}

// advance moves name's cursor from old to next if it is still at old.
func (c *legacyCursors) advance(name string, old, next legacyCursor) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.cursors[name]
	if e == nil || e.cur != old {
		return false
	}
	e.cur = next
	return true
}

func (c *legacyCursors) evictOldestLocked() {
	var oldest string
	var t time.Time
	for name, e := range c.cursors {
		if oldest == "" || e.used.Before(t) {
			oldest, t = name, e.used
		}
	}
	delete(c.cursors, oldest)
}
