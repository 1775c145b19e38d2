package shared

import (
	"errors"
	"fmt"
)

// Error codes. They are part of the API: clients switch on them, so a code is
// never renamed or reused for another meaning. docs/api.md lists them.
const (
	CodeBadRequest         = "bad_request"   // malformed body or query
	CodeInvalidRoom        = "invalid_room"  // room name does not match the pattern
	CodeInvalidName        = "invalid_name"  // display name empty, too long, invisible, or with control, format or bidi characters
	CodeNameTaken          = "name_taken"    // another live session holds the name
	CodeTextEmpty          = "text_empty"    // message text empty or only whitespace and invisible characters
	CodeTextTooLong        = "text_too_long" // message text over MaxTextRunes
	CodeTextInvalid        = "text_invalid"  // invalid UTF-8, forbidden control characters, or over 8 combining marks in a row
	CodeClientMsgIDTooLong = "client_msg_id_too_long"
	CodeInvalidParam       = "invalid_param" // after, before, wait or limit out of range or not a number
	CodeUnauthorized       = "unauthorized"  // no token where one is required
	CodeUnknownToken       = "unknown_token" // token given but unknown or expired: join again
	CodeBodyTooLarge       = "body_too_large"
	CodeUnsupportedType    = "unsupported_media_type"
	CodeRateLimited        = "rate_limited"
	CodeTooManyRooms       = "too_many_rooms" // the session is present in MaxRoomsPerSession rooms already
	CodeCrossSite          = "cross_site"     // a state change sent by a page of another site (Origin, Sec-Fetch-Site)
	CodeOverCapacity       = "over_capacity"
	CodeNotFound           = "not_found"
	CodeMethodNotAllowed   = "method_not_allowed"
	CodeInternal           = "internal"
	CodeUnavailable        = "unavailable" // the server is shutting down or its store failed
)

// Error is the one error type of the API: a stable code and a message for
// people. It travels as {"error":{"code":…,"message":…}}.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// ErrorResponse is the JSON envelope of every API error.
type ErrorResponse struct {
	Error *Error `json:"error"`
}

// Errorf makes an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, CodeInternal
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
