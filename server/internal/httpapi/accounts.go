package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

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

// createSession logs a user in.
func (s *Server) createSession() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req credentialsRequest
		if err := decodeJSON(w, r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
		sess, err := s.auth.Login(r.Context(), req.Username, req.Password)
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

type claimsKey struct{}

func claimsFrom(ctx context.Context) auth.Claims {
	c, _ := ctx.Value(claimsKey{}).(auth.Claims)
	return c
}

var (
	errNoToken          = &chat.Error{Kind: auth.ErrUnauthorized, Msg: "missing or invalid bearer token"}
	errWrongCredentials = &chat.Error{Kind: auth.ErrUnauthorized, Msg: "wrong username or password"}
)

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// verify checks the request's bearer token.
func (s *Server) verify(r *http.Request) (auth.Claims, error) {
	token, ok := bearer(r)
	if !ok {
		return auth.Claims{}, errNoToken
	}
	claims, err := s.auth.Verify(token)
	if err != nil {
		return auth.Claims{}, errNoToken
	}
	return claims, nil
}

// requireToken lets a request through only with a valid bearer token, whose
// claims it puts in the request's context.
func (s *Server) requireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, err := s.verify(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, claims)))
	})
}

// healthz answers while the process lives.
func (s *Server) healthz() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}

// readyz answers 200 while the server can serve: not draining, and its store
// answers within a second.
func (s *Server) readyz() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.Draining() {
			s.metrics.ready.Set(0)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		if err := s.chat.Ready(ctx); err != nil {
			s.metrics.ready.Set(0)
			s.log.WarnContext(r.Context(), "not ready: store unreachable", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "store unreachable"})
			return
		}
		s.metrics.ready.Set(1)
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}
