package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/parley-chat/parley/server/session"
	"github.com/parley-chat/parley/shared"
)

// handleCreateSession serves POST /api/session.
func (s *Server) handleCreateSession(w http.ResponseWriter, r *http.Request) {
	if ok, wait, err := s.sessionLimit.Allow(r.Context(), "session:"+s.clientKey(r)); err != nil || !ok {
		if err != nil {
			err = fmt.Errorf("%w: rate limiter: %w", session.ErrStore, err)
		} else {
			err = withRetry(shared.Errorf(shared.CodeRateLimited, "too many sessions from this address; retry shortly"), wait)
		}
		s.writeError(w, r, err)
		return
	}
	var req shared.SessionRequest
	if err := s.decodeRequest(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	sess, err := s.sessions.Create(r.Context(), req.Name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.Info("session created", "name", sess.Name)
	writeJSON(w, http.StatusCreated, shared.SessionResponse{Token: sess.Token, Name: sess.Name})
}

// handleEndSession serves DELETE /api/session.
func (s *Server) handleEndSession(w http.ResponseWriter, r *http.Request) {
	tok, _ := bearer(r)
	if tok == "" {
		s.writeError(w, r, shared.Errorf(shared.CodeUnauthorized, "send Authorization: Bearer <token>"))
		return
	}
	if err := s.sessions.End(r.Context(), tok); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// session returns the request's session: nil without an Authorization
// header, an error when one is given but the token is not live.
func (s *Server) session(r *http.Request) (*session.Session, error) {
	tok, present := bearer(r)
	if !present {
		return nil, nil
	}
	if tok == "" {
		return nil, shared.Errorf(shared.CodeUnauthorized, "send Authorization: Bearer <token>")
	}
	return s.sessions.Lookup(r.Context(), tok)
}

func roomOf(r *http.Request) (string, error) {
	room := r.PathValue("room")
	return room, shared.ValidateRoom(room)
}

// handleSend serves POST /api/rooms/{room}/messages.
func (s *Server) handleSend(w http.ResponseWriter, r *http.Request) {
	room, err := roomOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	sess, err := s.session(r)
	if err == nil && sess == nil {
		err = shared.Errorf(shared.CodeUnauthorized, "sending needs a session: POST /api/session first")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req shared.SendRequest
	if err := s.decodeRequest(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if ok, wait, err := s.allowSend(r.Context(), sess); err != nil || !ok {
		if err != nil {
			err = fmt.Errorf("%w: rate limiter: %w", session.ErrStore, err)
		} else {
			err = withRetry(shared.Errorf(shared.CodeRateLimited, "sending too fast; retry shortly"), wait)
		}
		s.writeError(w, r, err)
		return
	}
	if err := s.allowNewRoom(r.Context(), r, room); err != nil {
		s.writeError(w, r, err)
		return
	}
	msg, dup, err := s.hub.Append(r.Context(), shared.Message{
		Room: room, Kind: shared.KindText, Author: sess.Name, Text: req.Text, ClientMsgID: req.ClientMsgID,
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	status := http.StatusCreated
	if dup {
		status = http.StatusOK
	}
	writeJSON(w, status, msg)
}

// allowSend applies the send limit to sess: Config.SendLimiter's, shared
// by instances, or the Manager's own.
func (s *Server) allowSend(ctx context.Context, sess *session.Session) (bool, time.Duration, error) {
	if s.sendLimit == nil {
		ok, wait := s.sessions.AllowSend(sess)
		return ok, wait, nil
	}
	return s.sendLimit.Allow(ctx, "send:"+session.NameKey(sess.Name))
}

// handleMembers serves GET /api/rooms/{room}/members.
func (s *Server) handleMembers(w http.ResponseWriter, r *http.Request) {
	room, err := roomOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	members, err := s.sessions.Members(r.Context(), room)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, shared.MembersResponse{Room: room, Members: members})
}

// deadline is the earliest of now+d and ctx's deadline.
func deadline(ctx context.Context, d time.Duration) time.Time {
	t := time.Now().Add(d)
	if dl, ok := ctx.Deadline(); ok && dl.Before(t) {
		return dl
	}
	return t
}
