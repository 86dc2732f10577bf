package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/golang-jwt/jwt/v5"

	"github.com/parleychat/parley/server/internal/chat"
)

// tokenClaims is the JWT payload: sub is the user id, name the username, jti
// the session's id, which the store must still hold live for the token to
// be honoured.
type tokenClaims struct {
	Name string `json:"name"`
	jwt.RegisteredClaims
}

// newSession starts a session of u in the store and signs a token naming it.
func (s *Service) newSession(ctx context.Context, u chat.User) (Session, error) {
	now := s.now()
	// NumericDate truncates to whole seconds; the session reports the
	// truncated expiry so that it equals what Verify later reads back.
	exp := jwt.NewNumericDate(now.Add(s.tokenTTL))
	id := chat.NewID(now)
	if err := s.store.CreateSession(ctx, chat.Session{ID: id, User: u, Expires: exp.UTC()}); err != nil {
		return Session{}, fmt.Errorf("create session: %w", err)
	}
	claims := tokenClaims{
		Name: u.Username,
		RegisteredClaims: jwt.RegisteredClaims{
			ID:        id,
			Subject:   u.ID,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: exp,
		},
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.secret)
	if err != nil {
		return Session{}, fmt.Errorf("sign token: %w", err)
	}
	return Session{ID: id, User: u, Token: token, ExpiresAt: exp.UTC()}, nil
}

// Verify checks a bearer token and returns who it speaks for. Anything short
// of an unexpired HS256 token signed with this service's secret, naming a
// user and a session that is still live, is ErrUnauthorized; tokens from
// before sessions (without a jti) are refused too, so their bearers sign in
// again. Whether the session is live is asked of the store, or of a cache
// at most Config.SessionCacheTTL old; a store that fails is an error of its
// own kind (ErrUnavailable), not a refusal.
func (s *Service) Verify(ctx context.Context, token string) (Claims, error) {
	var c tokenClaims
	_, err := jwt.ParseWithClaims(token, &c,
		func(*jwt.Token) (any, error) { return s.secret, nil },
		// Pinning the algorithm stops "alg":"none" and algorithm
		// confusion: the header is attacker-controlled.
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(s.now),
	)
	// iat is deliberately not checked against the clock: a token fresh from
	// a replica whose clock runs a second ahead would be refused.
	if err != nil || c.Subject == "" || c.Name == "" || c.ID == "" {
		return Claims{}, chat.Errorf(ErrUnauthorized, "invalid or expired token")
	}
	if err := s.checkSession(ctx, c.ID, c.Subject); err != nil {
		return Claims{}, err
	}
	return Claims{
		User:      chat.User{ID: c.Subject, Username: c.Name},
		Session:   c.ID,
		ExpiresAt: c.ExpiresAt.UTC(),
	}, nil
}

// ErrSessionEnded is the refusal of a well-signed token or a ticket whose
// session is no longer live: logged out, revoked, or its account deleted.
// Its kind is ErrUnauthorized.
var ErrSessionEnded error = &chat.Error{Kind: ErrUnauthorized, Msg: "session ended; sign in again"}

// checkSession reports whether the session id of user userID is live.
func (s *Service) checkSession(ctx context.Context, id, userID string) error {
	sess, err := s.sessions.get(ctx, s.store, id)
	switch {
	case errors.Is(err, chat.ErrNotFound):
		return ErrSessionEnded
	case err != nil:
		return fmt.Errorf("look up session: %w", err)
	case sess.User.ID != userID:
		// Only a store that lost its sessions and reused an id would get
		// here; the token still does not speak for whoever has it now.
		return ErrSessionEnded
	}
	return nil
}

// RandomSecret returns a fresh 32-byte signing secret, for a server started
// without PARLEY_JWT_SECRET. Tokens signed with it die with the process and
// are not accepted by other replicas.
func RandomSecret() []byte {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand documents it)
	return b
}
