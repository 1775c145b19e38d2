package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/parley-chat/parley/server/queue"
	"github.com/parley-chat/parley/server/session"
	"github.com/parley-chat/parley/shared"
)

// The textbook's endpoints, kept so that its jQuery page works unchanged:
// POST /send_msg/ appends to lobby; GET /get_msg/?name=X returns one text
// message per call from X's own cursor, or status false after 10 s.
//
// What the textbook did not guard, they do (issue 8): a post never carries
// the name of a live session (name_taken) and is marked Via "textbook";
// posts are rate-limited per client address; and a cursor belongs to one
// browser as well as a name, through a cookie, so nobody can take another
// browser's messages by asking for its name.

type legacySend struct {
	// Room is Parley's addition, for pages that want a room of their own
	// (the /learn page); the textbook's page sends none and gets lobby.
	Room    string `json:"room" schema:"room"`
	Content string `json:"content" schema:"content"`
	Name    string `json:"name" schema:"name"`
}

// handleLegacySend serves POST /send_msg/.
func (s *Server) handleLegacySend(w http.ResponseWriter, r *http.Request) {
	if ok, wait, err := s.legacySendLimit.Allow(r.Context(), "textbook:"+s.clientKey(r)); err != nil || !ok {
		if err == nil {
			err = withRetry(shared.Errorf(shared.CodeRateLimited, "posting too fast from this address; retry shortly"), wait)
		}
		s.writeError(w, r, err)
		return
	}
	var req legacySend
	if err := decodeBody(w, r, s.dec, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	author := "anonymous"
	if req.Name != "" {
		name, err := shared.NormalizeName(req.Name)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		author = name
	}
	// Refused rather than stored under a changed name: the textbook page
	// shows no error, but a post that silently appeared under another name
	// would be worse, and a name in use is one a session holds right now.
	if inUse, err := s.sessions.NameInUse(r.Context(), author); err != nil || inUse {
		if err == nil {
			err = shared.Errorf(shared.CodeNameTaken, "the name %q belongs to a live session; the textbook endpoint cannot post as it", author)
		}
		s.writeError(w, r, err)
		return
	}
	text, err := shared.NormalizeText(req.Content)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	room, err := legacyRoom(req.Room)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.allowNewRoom(r.Context(), r, room); err != nil {
		s.writeError(w, r, err)
		return
	}
	msg := shared.Message{Room: room, Kind: shared.KindText, Author: author, Text: text, Via: shared.ViaTextbook}
	if _, _, err := s.hub.Append(r.Context(), msg); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("OK"))
}

// legacyCookie names the cookie that ties textbook cursors to one browser.
const legacyCookie = "parley_textbook"

// legacyBrowser returns the request's browser id from its cookie, issuing a
// new one when it has none (or one that is not ours). HttpOnly: no script
// reads it; SameSite=Lax: other sites' subrequests do not carry it.
func legacyBrowser(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(legacyCookie); err == nil && validBrowserID(c.Value) {
		return c.Value
	}
	b := make([]byte, 16) // 128 bits: not guessable
	_, _ = rand.Read(b)   // never fails on supported platforms
	id := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{
		Name: legacyCookie, Value: id, Path: "/",
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil,
	})
	return id
}

func validBrowserID(v string) bool {
	b, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil && len(b) == 16
}

// legacyName is the query's name, normalised; given twice it is refused,
// like every repeated parameter.
func legacyName(r *http.Request) (string, error) {
	names := r.URL.Query()["name"]
	if len(names) > 1 {
		return "", duplicated("name")
	}
	return shared.NormalizeName(strings.Join(names, ""))
}

// legacyRoom is the room of a textbook request: lobby, as in the textbook,
// unless the request names one (Parley's addition).
func legacyRoom(room string) (string, error) {
	if room == "" {
		return shared.LegacyRoom, nil
	}
	return room, shared.ValidateRoom(room)
}

// legacyQueryRoom reads the optional room parameter of a textbook GET.
func legacyQueryRoom(r *http.Request) (string, error) {
	rooms := r.URL.Query()["room"]
	if len(rooms) > 1 {
		return "", duplicated("room")
	}
	return legacyRoom(strings.Join(rooms, ""))
}

// legacyKey is the key of a textbook cursor: a name as read by one browser,
// in one room. Lobby's keys have no room in them, as before rooms existed
// here, so cursors kept in a store from then still work.
func legacyKey(browser, room, name string) string {
	if room == shared.LegacyRoom {
		return browser + "\x00" + name
	}
	return browser + "\x00" + room + "\x00" + name
}

// handleLegacyHome serves GET /home/?name=X: it registers X's cursor at the
// head of lobby for this browser, as the textbook's home view created X's
// queue, then sends the browser to the app.
func (s *Server) handleLegacyHome(w http.ResponseWriter, r *http.Request) {
	browser := legacyBrowser(w, r)
	room, err := legacyQueryRoom(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if name, err := legacyName(r); err == nil {
		if _, err := s.legacyCursor(r.Context(), room, legacyKey(browser, room, name)); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// handleLegacyGet serves GET /get_msg/?name=X. A browser that has not been
// to /home/ gets its cookie and a cursor at the head now, as the textbook
// created a queue for a name when first seen.
func (s *Server) handleLegacyGet(w http.ResponseWriter, r *http.Request) {
	name, err := legacyName(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	room, err := legacyQueryRoom(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	key := legacyKey(legacyBrowser(w, r), room, name)
	until := deadline(r.Context(), shared.LegacyWait)
	ctx, cancel := context.WithDeadline(r.Context(), until)
	defer cancel()
	hold, err := s.sessions.Hold(nil, room, s.clientKey(r), session.ReleaseFunc(cancel))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer s.sessions.Done(hold)
	for {
		cur, err := s.legacyCursor(ctx, room, key)
		var resp *queue.Page
		if err == nil {
			resp, err = s.hub.Read(ctx, room, queue.Query{
				After: &cur.Seq, Epoch: cur.Epoch, Limit: shared.MaxLimit, Wait: time.Until(until),
			})
		}
		if errors.Is(err, queue.ErrStore) || errors.Is(err, session.ErrStore) {
			// Not "nothing new" after a wait that never happened: the store
			// failed, and 503 with Retry-After says so, as the API does.
			s.writeError(w, r, err)
			return
		}
		if err != nil || len(resp.Messages) == 0 && !resp.Reset {
			break // timeout, client gone, or shutdown: answer "nothing"
		}
		next, msg, found := legacyPick(resp)
		// Advance only if no concurrent request of the same browser and name
		// moved the cursor meanwhile; otherwise read again from where it is.
		moved, err := s.legacy.AdvanceCursor(ctx, key, &cur, next)
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

// legacyCursor returns the cursor of key (legacyKey: a browser and a name
// in room), registering it at room's head when new.
func (s *Server) legacyCursor(ctx context.Context, room, name string) (session.Cursor, error) {
	for {
		cur, ok, err := s.legacy.Cursor(ctx, name)
		if err != nil {
			return cur, fmt.Errorf("%w: textbook cursor: %w", session.ErrStore, err)
		}
		if ok {
			return cur, nil
		}
		head, err := s.hub.Read(ctx, room, queue.Query{Limit: 1})
		if err != nil {
			return cur, err
		}
		cur = session.Cursor{Epoch: head.Epoch, Seq: head.Next}
		set, err := s.legacy.AdvanceCursor(ctx, name, nil, cur)
		if err != nil {
			return cur, fmt.Errorf("%w: register textbook cursor: %w", session.ErrStore, err)
		}
		if set {
			return cur, nil
		}
		// Registered meanwhile by another request: read it.
	}
}
