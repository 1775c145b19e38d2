package httpapi

import (
	"context"
	"fmt"
	"net/http"
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
		if _, err := s.legacyCursor(r.Context(), name); err != nil {
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
		cur, err := s.legacyCursor(ctx, name)
		if err != nil {
			break
		}
		resp, err := s.hub.Read(ctx, shared.LegacyRoom, queue.Query{
			After: &cur.Seq, Epoch: cur.Epoch, Limit: shared.MaxLimit, Wait: time.Until(until),
		})
		if err != nil || len(resp.Messages) == 0 && !resp.Reset {
			break // timeout, client gone, or shutdown: answer "nothing"
		}
		next, msg, found := legacyPick(resp)
		// Advance only if no concurrent request for the same name moved the
		// cursor meanwhile; otherwise read again from where it is now.
		moved, err := s.legacy.AdvanceCursor(ctx, name, &cur, next)
		if err != nil {
			break
		}
		if !moved {
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
func legacyPick(resp *queue.Page) (next session.Cursor, text string, found bool) {
	next = session.Cursor{Epoch: resp.Epoch, Seq: resp.Next}
	if resp.Reset {
		// The log was created anew: start again at its head.
		return next, "", false
	}
	for _, m := range resp.Messages {
		if m.Kind == shared.KindText {
			return session.Cursor{Epoch: resp.Epoch, Seq: m.Seq}, m.Text, true
		}
	}
	return next, "", false
}

// legacyCursor returns name's cursor, registering it at lobby's head when
// new.
func (s *Server) legacyCursor(ctx context.Context, name string) (session.Cursor, error) {
	for {
		cur, ok, err := s.legacy.Cursor(ctx, name)
		if err != nil {
			return cur, fmt.Errorf("%w: textbook cursor of %q: %w", session.ErrStore, name, err)
		}
		if ok {
			return cur, nil
		}
		head, err := s.hub.Read(ctx, shared.LegacyRoom, queue.Query{Limit: 1})
		if err != nil {
			return cur, err
		}
		cur = session.Cursor{Epoch: head.Epoch, Seq: head.Next}
		set, err := s.legacy.AdvanceCursor(ctx, name, nil, cur)
		if err != nil {
			return cur, fmt.Errorf("%w: register textbook cursor of %q: %w", session.ErrStore, name, err)
		}
		if set {
			return cur, nil
		}
		// Registered meanwhile by another request: read it.
	}
}
