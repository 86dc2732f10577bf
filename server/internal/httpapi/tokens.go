package httpapi

import (
	"context"
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
