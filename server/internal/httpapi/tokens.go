package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/parleychat/parley/server/internal/auth"
	"github.com/parleychat/parley/server/internal/chat"
)

type claimsKey struct{}

func claimsFrom(ctx context.Context) auth.Claims {
	c, _ := ctx.Value(claimsKey{}).(auth.Claims)
	return c
}

var errNoToken = &chat.Error{Kind: auth.ErrUnauthorized, Msg: "missing or invalid bearer token"}

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// verify checks the request's bearer token, and that its session is live
// (see auth.Service.Verify for how fresh that answer is). A token whose
// session has ended is told so; a store that cannot answer is not a
// refusal but an error of its own (503).
func (s *Server) verify(r *http.Request) (auth.Claims, error) {
	token, ok := bearer(r)
	if !ok {
		return auth.Claims{}, errNoToken
	}
	claims, err := s.auth.Verify(r.Context(), token)
	switch {
	case errors.Is(err, auth.ErrSessionEnded):
		return auth.Claims{}, err
	case errors.Is(err, auth.ErrUnauthorized):
		return auth.Claims{}, errNoToken
	case err != nil:
		return auth.Claims{}, err
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
