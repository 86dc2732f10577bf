package httpapi

import (
	"errors"
	"net/http"

	"github.com/parleychat/parley/server/internal/auth"
	"github.com/parleychat/parley/server/internal/chat"
)

type credentialsRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type sessionResponse struct {
	User      userJSON `json:"user"`
	Token     string   `json:"token"`
	ExpiresAt string   `json:"expires_at"`
}

func toSession(s auth.Session) sessionResponse {
	return sessionResponse{User: toUser(s.User), Token: s.Token, ExpiresAt: formatTime(s.ExpiresAt)}
}

// createUser signs a user up and logs them in.
func (s *Server) createUser() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req credentialsRequest
		if err := decodeJSON(w, r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
		sess, err := s.auth.Register(r.Context(), req.Username, req.Password)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusCreated, toSession(sess))
	}
}

var errWrongCredentials = &chat.Error{Kind: auth.ErrUnauthorized, Msg: "wrong username or password"}

// createSession logs a user in.
func (s *Server) createSession() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req credentialsRequest
		if err := decodeJSON(w, r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
		sess, err := s.loginWithBackoff(r, req.Username, req.Password)
		if errors.Is(err, auth.ErrUnauthorized) {
			err = errWrongCredentials
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusCreated, toSession(sess))
	}
}

type ticketResponse struct {
	Ticket    string `json:"ticket"`
	ExpiresAt string `json:"expires_at"`
}

// createTicket issues a single-use ticket for opening a WebSocket from a
// browser, which cannot set the Authorization header on the upgrade.
func (s *Server) createTicket() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ticket, expires, err := s.auth.IssueTicket(r.Context(), claimsFrom(r.Context()))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusCreated, ticketResponse{Ticket: ticket, ExpiresAt: formatTime(expires)})
	}
}
