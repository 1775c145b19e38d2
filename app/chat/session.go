package chat

import (
	"context"
	"sync"

	"github.com/parley-chat/parley/shared"
)

// Session is the identity the browser holds: the display name and its
// token. It is shared by every tab.
type Session struct {
	Name  string `json:"name"`
	Token string `json:"token"`
}

func (s Session) valid() bool { return s.Name != "" && s.Token != "" }

// Joiner is what renewing a session needs from the server.
type Joiner interface {
	Join(ctx context.Context, name string) (shared.SessionResponse, error)
}

// Sessions is the one owner of the page's session: it is read, saved,
// renewed and cleared here and nowhere else. Storage is the source of
// truth shared with the other tabs; when a write to it fails (storage full
// or blocked by the user) the session is kept in memory instead, so this
// tab keeps working rather than asking for a name again, and Save reports
// the failure so the UI can say that a reload will forget it.
type Sessions struct {
	store Storage
	locks Locker

	mu sync.Mutex
	// mem holds the session when storage refused it; memOnly says so.
	mem     Session
	memOnly bool
}

// NewSessions returns the session owner over store; locks serialise
// renewals across tabs.
func NewSessions(store Storage, locks Locker) *Sessions {
	return &Sessions{store: store, locks: locks}
}

// Get returns the current session, if any.
func (s *Sessions) Get() (Session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.memOnly {
		return s.mem, true
	}
	var sess Session
	if !getJSON(s.store, keySession, &sess) || !sess.valid() {
		return Session{}, false
	}
	return sess, true
}

// Save makes sess the session of every tab. When storage refuses it, the
// session still holds for this page and the error says it was not stored.
func (s *Sessions) Save(sess Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := setJSON(s.store, keySession, sess); err != nil {
		s.mem, s.memOnly = sess, true
		return err
	}
	s.mem, s.memOnly = Session{}, false
	return nil
}

// Stored reports whether the session is in storage, shared with the other
// tabs and kept across reloads; false while it lives in memory only.
func (s *Sessions) Stored() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.memOnly
}

// Clear forgets the session (leave), in storage and in memory.
func (s *Sessions) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.store.Del(keySession)
	s.mem, s.memOnly = Session{}, false
}

// Renew replaces a token the server no longer knows by joining again with
// the same name. Tabs do it under one lock, and a tab that finds another
// tab's fresh token takes it instead of joining a second time (which would
// fail with name_taken). A renewed session that storage refuses is kept in
// memory: it is still returned, without error.
func (s *Sessions) Renew(ctx context.Context, api Joiner, failed Session) (Session, error) {
	release, err := s.locks.Acquire(ctx, "parley:session")
	if err != nil {
		return Session{}, err
	}
	defer release()
	cur, ok := s.Get()
	if !ok {
		return Session{}, &shared.Error{Code: shared.CodeUnauthorized, Message: "no session"}
	}
	if cur.Token != failed.Token {
		return cur, nil
	}
	resp, err := api.Join(ctx, cur.Name)
	if err != nil {
		return Session{}, err
	}
	sess := Session{Name: resp.Name, Token: resp.Token}
	if err := s.Save(sess); err != nil {
		// Kept in memory (see Save): this tab goes on, Stored tells the UI.
		return sess, nil
	}
	return sess, nil
}
