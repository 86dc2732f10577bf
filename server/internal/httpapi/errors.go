package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/parleychat/parley/server/internal/auth"
	"github.com/parleychat/parley/server/internal/chat"
)

// Protocol error codes.
const (
	codeBadRequest   = "bad_request"
	codeUnauthorized = "unauthorized"
	codeForbidden    = "forbidden"
	codeNotFound     = "not_found"
	codeConflict     = "conflict"
	codeTooLarge     = "too_large"
	codeRateLimited  = "rate_limited"
	codeUnavailable  = "unavailable"
	codeInternal     = "internal"
)

// Failures that start in this package.
var (
	errRateLimited = &chat.Error{Kind: errors.New("rate limited"), Msg: "too many requests; slow down"}
	errForbidden   = &chat.Error{Kind: errors.New("forbidden"), Msg: "origin not allowed"}
)

// errorTable is the one place that maps failures to HTTP statuses and
// protocol codes. The first entry that matches wins; anything unmatched is
// internal, logged and reported once.
var errorTable = []struct {
	kind   error
	status int
	code   string
}{
	{chat.ErrInvalid, http.StatusBadRequest, codeBadRequest},
	{auth.ErrUnauthorized, http.StatusUnauthorized, codeUnauthorized},
	{errForbidden.Kind, http.StatusForbidden, codeForbidden},
	{chat.ErrNotFound, http.StatusNotFound, codeNotFound},
	{chat.ErrConflict, http.StatusConflict, codeConflict},
	{chat.ErrTooLarge, http.StatusRequestEntityTooLarge, codeTooLarge},
	{errRateLimited.Kind, http.StatusTooManyRequests, codeRateLimited},
	{chat.ErrUnavailable, http.StatusServiceUnavailable, codeUnavailable},
	{context.DeadlineExceeded, http.StatusServiceUnavailable, codeUnavailable},
	// The client left; the answer goes nowhere, but it is no internal error.
	{context.Canceled, http.StatusServiceUnavailable, codeUnavailable},
}

// generic messages for failures that carry none of their own.
var genericMessage = map[string]string{
	codeBadRequest:   "bad request",
	codeUnauthorized: "authentication required",
	codeForbidden:    "forbidden",
	codeNotFound:     "not found",
	codeConflict:     "conflict",
	codeTooLarge:     "too large",
	codeRateLimited:  "rate limited",
	codeUnavailable:  "temporarily unavailable; try again",
	codeInternal:     "internal error",
}

// classify returns the status, code and client-safe message for err.
func classify(err error) (status int, code, msg string) {
	status, code = http.StatusInternalServerError, codeInternal
	for _, e := range errorTable {
		if errors.Is(err, e.kind) {
			status, code = e.status, e.code
			break
		}
	}
	msg = genericMessage[code]
	var ce *chat.Error
	if code != codeInternal && errors.As(err, &ce) {
		msg = ce.Msg
	}
	return status, code, msg
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// writeError answers with the error envelope. Internal errors are logged
// here, once, with the request that met them.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg := classify(err)
	if code == codeInternal {
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		s.tel.Reporter.Capture(r.Context(), err, map[string]string{"route": routeOf(r), "method": methodLabel(r.Method)})
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="parley"`)
	}
	writeJSON(w, status, errorEnvelope(code, msg))
}

func errorEnvelope(code, msg string) errorBody {
	var body errorBody
	body.Error.Code, body.Error.Message = code, msg
	return body
}
