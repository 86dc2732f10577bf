package auth

import (
	"crypto/rand"
	"fmt"

	"github.com/golang-jwt/jwt/v5"

	"github.com/parleychat/parley/server/internal/chat"
)

// tokenClaims is the JWT payload: sub is the user id, name the username, so
// a request can be attributed without a store round trip.
type tokenClaims struct {
	Name string `json:"name"`
	jwt.RegisteredClaims
}

func (s *Service) newSession(u chat.User) (Session, error) {
	now := s.now()
	// NumericDate truncates to whole seconds; the session reports the
	// truncated expiry so that it equals what Verify later reads back.
	exp := jwt.NewNumericDate(now.Add(s.tokenTTL))
	claims := tokenClaims{
		Name: u.Username,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   u.ID,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: exp,
		},
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.secret)
	if err != nil {
		return Session{}, fmt.Errorf("sign token: %w", err)
	}
	return Session{User: u, Token: token, ExpiresAt: exp.UTC()}, nil
}

// Verify checks a bearer token and returns who it speaks for. Anything short
// of an unexpired HS256 token signed with this service's secret and naming a
// user is ErrUnauthorized.
func (s *Service) Verify(token string) (Claims, error) {
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
	if err != nil || c.Subject == "" || c.Name == "" {
		return Claims{}, chat.Errorf(ErrUnauthorized, "invalid or expired token")
	}
	return Claims{
		User:      chat.User{ID: c.Subject, Username: c.Name},
		ExpiresAt: c.ExpiresAt.UTC(),
	}, nil
}

// RandomSecret returns a fresh 32-byte signing secret, for a server started
// without PARLEY_JWT_SECRET. Tokens signed with it die with the process and
// are not accepted by other replicas.
func RandomSecret() []byte {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand documents it)
	return b
}
