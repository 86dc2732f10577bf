package httpapi

import (
	"errors"
	"net/http"

	"github.com/parleychat/parley/server/internal/auth"
	"github.com/parleychat/parley/server/internal/chat"
)

// Close reasons of a socket whose session ended, with 1008.
const (
	reasonSessionEnded   = "session ended"
	reasonAccountDeleted = "account deleted"
)

var errWrongPassword = &chat.Error{Kind: errKindForbidden, Msg: "wrong password"}

// deleteSession logs out: the bearer's session ends, and so do its sockets
// on this replica at once (on the others within the session check's bound).
func (s *Server) deleteSession() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := claimsFrom(r.Context())
		if err := s.auth.Logout(r.Context(), c); err != nil {
			s.writeError(w, r, err)
			return
		}
		s.closeSessions(func(conn *conn) bool { return conn.session == c.Session }, reasonSessionEnded)
		w.WriteHeader(http.StatusNoContent)
	}
}

type changePasswordRequest struct {
	Password    string `json:"password"`
	NewPassword string `json:"new_password"`
}

// changePassword changes the bearer's password and ends every other session
// of the account; the bearer's own goes on.
func (s *Server) changePassword() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req changePasswordRequest
		if err := decodeJSON(w, r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
		c := claimsFrom(r.Context())
		err := s.guardPassword(r, c.User.Username, auth.ErrWrongPassword, func() error {
			return s.auth.ChangePassword(r.Context(), c, req.Password, req.NewPassword)
		})
		if err != nil {
			s.writeError(w, r, accountError(err))
			return
		}
		s.closeSessions(func(conn *conn) bool {
			return conn.user.ID == c.User.ID && conn.session != c.Session
		}, reasonSessionEnded)
		w.WriteHeader(http.StatusNoContent)
	}
}

type deleteAccountRequest struct {
	Password string `json:"password"`
}

// deleteAccount deletes the bearer's account and ends all its sessions.
func (s *Server) deleteAccount() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req deleteAccountRequest
		if err := decodeJSON(w, r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
		c := claimsFrom(r.Context())
		err := s.guardPassword(r, c.User.Username, auth.ErrWrongPassword, func() error {
			return s.auth.DeleteAccount(r.Context(), c, req.Password)
		})
		if err != nil {
			s.writeError(w, r, accountError(err))
			return
		}
		s.closeSessions(func(conn *conn) bool { return conn.user.ID == c.User.ID }, reasonAccountDeleted)
		w.WriteHeader(http.StatusNoContent)
	}
}

// accountError answers a wrong current password with 403: the bearer is
// signed in, so 401 would tell the client to sign in again.
func accountError(err error) error {
	if errors.Is(err, auth.ErrWrongPassword) {
		return errWrongPassword
	}
	return err
}
