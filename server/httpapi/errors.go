package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/parley-chat/parley/server/queue"
	"github.com/parley-chat/parley/server/session"
	"github.com/parley-chat/parley/shared"
)

// statusOf maps every error code to its HTTP status: the one table of it.
var statusOf = map[string]int{
	shared.CodeBadRequest:         http.StatusBadRequest,
	shared.CodeInvalidRoom:        http.StatusBadRequest,
	shared.CodeInvalidName:        http.StatusBadRequest,
	shared.CodeTextEmpty:          http.StatusBadRequest,
	shared.CodeTextTooLong:        http.StatusBadRequest,
	shared.CodeTextInvalid:        http.StatusBadRequest,
	shared.CodeClientMsgIDTooLong: http.StatusBadRequest,
	shared.CodeInvalidParam:       http.StatusBadRequest,
	shared.CodeUnauthorized:       http.StatusUnauthorized,
	shared.CodeUnknownToken:       http.StatusUnauthorized,
	shared.CodeNotFound:           http.StatusNotFound,
	shared.CodeMethodNotAllowed:   http.StatusMethodNotAllowed,
	shared.CodeNameTaken:          http.StatusConflict,
	shared.CodeBodyTooLarge:       http.StatusRequestEntityTooLarge,
	shared.CodeUnsupportedType:    http.StatusUnsupportedMediaType,
	shared.CodeRateLimited:        http.StatusTooManyRequests,
	shared.CodeTooManyRooms:       http.StatusTooManyRequests,
	shared.CodeCrossSite:          http.StatusForbidden,
	shared.CodeInternal:           http.StatusInternalServerError,
	shared.CodeOverCapacity:       http.StatusServiceUnavailable,
	shared.CodeUnavailable:        http.StatusServiceUnavailable,
}

// retryAfter is an error that tells the client when to come back (429, 503).
type retryAfter struct {
	err   *shared.Error
	after time.Duration
}

func (e retryAfter) Error() string             { return e.err.Error() }
func (e retryAfter) Unwrap() error             { return e.err }
func (e retryAfter) RetryAfter() time.Duration { return e.after }

func withRetry(err *shared.Error, after time.Duration) error { return retryAfter{err, after} }

// writeError answers err as JSON (writeError) and counts it by code for
// /metrics.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	s.metrics.refused(writeError(w, r, s.log, err))
}

// writeError answers err as JSON and returns its code. Errors that are not
// *shared.Error are logged and answered as internal, without their text: it
// may hold details meant for operators, not clients.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) (code string) {
	var e *shared.Error
	if !errors.As(err, &e) {
		switch {
		case errors.Is(err, queue.ErrTooManyRooms):
			e = shared.Errorf(shared.CodeOverCapacity, "too many rooms are open")
		case errors.Is(err, queue.ErrStore):
			e = shared.Errorf(shared.CodeUnavailable, "the message store failed; retry shortly")
		case errors.Is(err, session.ErrStore):
			e = shared.Errorf(shared.CodeUnavailable, "the session store failed; retry shortly")
		case errors.Is(err, queue.ErrClosed):
			e = shared.Errorf(shared.CodeUnavailable, "the server is shutting down")
		case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
			e = shared.Errorf(shared.CodeUnavailable, "the request was cancelled")
		default:
			e = shared.Errorf(shared.CodeInternal, "internal error")
		}
	}
	status, ok := statusOf[e.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	// A done context does not mean nobody listens: net/http also cancels
	// it when the read timeout cuts a slow body, and a handler that then
	// wrote nothing was answered 200 with an empty body, which the client
	// took for a stored message (issue 8). So the answer is always written
	// (to a client that has gone, the write fails harmlessly); only the
	// log is spared.
	gone := r.Context().Err() != nil
	switch {
	case gone:
	case status == http.StatusInternalServerError:
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "code", e.Code, "err", err)
	case status >= 500:
		log.Warn("request refused", "method", r.Method, "path", r.URL.Path, "code", e.Code, "err", err)
	}
	// Other packages' errors (session's) say when too, by this method.
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int((ra.RetryAfter()+time.Second-1)/time.Second))))
	} else if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	writeJSON(w, status, shared.ErrorResponse{Error: e})
	return e.Code
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	// A write error means the client left; there is no one to tell.
	_ = json.NewEncoder(w).Encode(v)
}
