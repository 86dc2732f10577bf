package httpapi

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Names of the limits, the values of parley_rate_limited_total's label.
// Every limit the server enforces refuses through limitError under one of
// these names.
const (
	limitSignup       = "signup"
	limitLogin        = "login"
	limitLoginBackoff = "login_backoff"
	limitRoomsCreate  = "rooms_create"
	limitHistory      = "history"
	limitConnsPerUser = "conns_per_user"
	limitConnsPerAddr = "conns_per_addr"
	limitWSFrames     = "ws_frames"
	limitWSJoins      = "ws_joins"
	limitWSTyping     = "ws_typing"
	limitSends        = "sends"
)

var limitNames = []string{
	limitSignup, limitLogin, limitLoginBackoff, limitRoomsCreate, limitHistory,
	limitConnsPerUser, limitConnsPerAddr, limitWSFrames, limitWSJoins, limitWSTyping, limitSends,
}

// limitError is a refusal by a limit: 429 rate_limited over HTTP, an error
// frame rate_limited on the WebSocket, both saying how long to wait.
type limitError struct {
	limit string        // one of limitNames
	wait  time.Duration // after this the same request would pass
	msg   string
}

func (e *limitError) Error() string { return e.limit + ": " + e.msg }

// Unwrap makes a refusal a chat.Error-like kind for the error table.
func (e *limitError) Unwrap() error { return errKindRateLimited }

// refuse counts a refusal by limit and returns it as an error to answer.
func (s *Server) refuse(limit string, wait time.Duration, msg string) error {
	s.metrics.limited.WithLabelValues(limit).Inc()
	return &limitError{limit: limit, wait: max(wait, time.Millisecond), msg: msg}
}

// retryAfter is how long err asks the client to wait, if it is a refusal.
func retryAfter(err error) (time.Duration, bool) {
	var le *limitError
	if !errors.As(err, &le) {
		return 0, false
	}
	return le.wait, true
}

// setRetryAfter writes the Retry-After header of a refusal: whole seconds,
// rounded up, at least 1 (RFC 9110 allows no fractions).
func setRetryAfter(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
}
