package httpapi

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/parleychat/parley/server/internal/auth"
	"github.com/parleychat/parley/server/internal/chat"
)

var (
	errAdminOff   = &chat.Error{Kind: errKindForbidden, Msg: "admin endpoints are off: set PARLEY_ADMIN_TOKEN"}
	errAdminToken = &chat.Error{Kind: auth.ErrUnauthorized, Msg: "admin endpoints need the admin bearer token"}
	errFaultsOff  = &chat.Error{Kind: chat.ErrNotFound, Msg: "fault injection is off: start the server with PARLEY_FAULTS=on"}
)

// isAdminPath reports whether path is under /admin, which needs the admin
// token.
func isAdminPath(path string) bool {
	return path == "/admin" || strings.HasPrefix(path, "/admin/")
}

// requireAdminToken guards /admin and everything under it, matched or not:
// without a configured token it refuses everyone, and otherwise it wants
// that token as a bearer token. It runs before routing, so that nobody
// without the token learns which admin paths and methods exist.
func (s *Server) requireAdminToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isAdminPath(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		if s.cfg.AdminToken == "" {
			s.writeError(w, r, errAdminOff)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.AdminToken)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="parley-admin"`)
			s.writeError(w, r, errAdminToken)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// faultsOff answers every fault route while fault injection is off.
func (s *Server) faultsOff() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { s.writeError(w, r, errFaultsOff) }
}

// adminNotFound answers a path of the admin listener that no route takes,
// saying which part of the listener it missed.
func (s *Server) adminNotFound() http.HandlerFunc {
	faults := s.notFound("no fault endpoint has this path")
	admin := s.notFound("no such admin endpoint")
	other := s.notFound("no such endpoint")
	return func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/admin/faults/"):
			faults(w, r)
		case isAdminPath(r.URL.Path):
			admin(w, r)
		default:
			other(w, r)
		}
	}
}
