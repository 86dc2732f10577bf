package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

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

// Kinds of failure that start in this package; chat and auth declare the
// others.
var (
	errKindForbidden        = errors.New("forbidden")
	errKindRateLimited      = errors.New("rate limited")
	errKindMethodNotAllowed = errors.New("method not allowed")
)

var errRateLimited = &chat.Error{Kind: errKindRateLimited, Msg: "too many requests; slow down"}

// errorTable is the one place that maps failures to HTTP statuses and
// protocol codes, for every route of both listeners and for error frames.
// The first entry that matches wins; anything unmatched is internal, logged
// and reported once.
var errorTable = []struct {
	kind   error
	status int
	code   string
}{
	{chat.ErrInvalid, http.StatusBadRequest, codeBadRequest},
	// The protocol answers a wrong method with bad_request, and 405.
	{errKindMethodNotAllowed, http.StatusMethodNotAllowed, codeBadRequest},
	{auth.ErrUnauthorized, http.StatusUnauthorized, codeUnauthorized},
	{errKindForbidden, http.StatusForbidden, codeForbidden},
	{chat.ErrNotFound, http.StatusNotFound, codeNotFound},
	{chat.ErrConflict, http.StatusConflict, codeConflict},
	{chat.ErrTooLarge, http.StatusRequestEntityTooLarge, codeTooLarge},
	{errKindRateLimited, http.StatusTooManyRequests, codeRateLimited},
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

// writeError answers a request that failed with err. Internal errors are
// logged and reported here, once, with the request that met them.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg := classify(err)
	if code == codeInternal {
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		s.tel.Reporter.Capture(r.Context(), err, map[string]string{"route": routeOf(r), "method": methodLabel(r.Method)})
	}
	if status == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		// The admin routes have set a realm of their own.
		w.Header().Set("WWW-Authenticate", `Bearer realm="parley"`)
	}
	if wait, ok := retryAfter(err); ok {
		setRetryAfter(w, wait)
		writeJSON(w, status, newErrorBody(code, msg, wait))
		return
	}
	writeEnvelope(w, status, code, msg)
}

// errorBody is the error envelope: {"error":{"code":...,"message":...}}.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		// RetryAfter is a refusal's wait in seconds, finer than the
		// Retry-After header's whole seconds (an extension).
		RetryAfter float64 `json:"retry_after,omitempty"`
	} `json:"error"`
}

func newErrorBody(code, msg string, wait time.Duration) errorBody {
	var body errorBody
	body.Error.Code, body.Error.Message, body.Error.RetryAfter = code, msg, wait.Seconds()
	return body
}

// writeEnvelope writes the error envelope. It is the only code that does,
// on either listener: writeError calls it, and so does recoverPanics, which
// has reported its panic itself.
func writeEnvelope(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, newErrorBody(code, msg, 0))
}

// notFound answers a path that no route of the listener takes.
func (s *Server) notFound(msg string) http.HandlerFunc {
	err := &chat.Error{Kind: chat.ErrNotFound, Msg: msg}
	return func(w http.ResponseWriter, r *http.Request) { s.writeError(w, r, err) }
}

// methodNotAllowed answers a method that the path does not take, on either
// listener, naming in Allow the methods it does take (RFC 9110 asks for the
// header).
func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	allow := strings.Join(allowedMethods(r), ", ")
	w.Header().Set("Allow", allow)
	s.writeError(w, r, &chat.Error{Kind: errKindMethodNotAllowed, Msg: fmt.Sprintf("%s is not allowed here; use %s", r.Method, allow)})
}

// allowedMethods asks the router which methods r's path takes. chi keeps
// the list it found to itself, so each method is matched again.
func allowedMethods(r *http.Request) []string {
	routes := chi.RouteContext(r.Context()).Routes
	path := r.URL.RawPath
	if path == "" {
		path = r.URL.Path
	}
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if routes.Match(chi.NewRouteContext(), m, path) {
			allow = append(allow, m)
		}
	}
	return allow
}
