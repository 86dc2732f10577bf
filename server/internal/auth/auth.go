// Package auth creates accounts, checks passwords, issues and verifies the
// bearer tokens of the public API, and issues the single-use tickets that let
// browsers open a WebSocket.
package auth

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/parleychat/parley/server/internal/chat"
)

// ErrUnauthorized is the kind of every failure to authenticate: wrong
// credentials, a bad or expired token, an unknown or spent ticket. Transports
// answer it with 401.
var ErrUnauthorized = errors.New("wrong username or password")

// Password limits of the public protocol, in characters.
const (
	MinPasswordChars = 8
	MaxPasswordChars = 128
)

// Defaults for the zero values of Config.
const (
	DefaultTokenTTL  = 24 * time.Hour
	DefaultTicketTTL = 30 * time.Second
	// MaxTicketTTL is the protocol's limit: a ticket travels in a URL, where
	// it may be logged, so it must be useless soon after it is issued.
	MaxTicketTTL = 60 * time.Second
)

// Store is what the service needs from persistence; chat.Store provides it.
// Credentials and TakeTicket report chat.ErrNotFound for a missing user or a
// missing or expired ticket, and CreateUser reports chat.ErrConflict for a
// taken username. The sessions keep chat.SessionStore's contract.
type Store interface {
	CreateUser(ctx context.Context, u chat.User, passwordHash string) error
	Credentials(ctx context.Context, username string) (chat.User, string, error)
	SaveTicket(ctx context.Context, t chat.Ticket) error
	TakeTicket(ctx context.Context, hash string, now time.Time) (chat.Ticket, error)
	chat.SessionStore
}

// Config tunes a Service. Only Secret is required.
type Config struct {
	// Secret signs tokens (HMAC-SHA256). Every replica must share it.
	Secret []byte
	// TokenTTL is how long a token stays valid; zero means DefaultTokenTTL.
	TokenTTL time.Duration
	// TicketTTL is how long a WebSocket ticket stays valid; zero means
	// DefaultTicketTTL, and it may not exceed MaxTicketTTL.
	TicketTTL time.Duration
	// PasswordCost is the bcrypt cost; zero means bcrypt.DefaultCost.
	PasswordCost int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// SessionCacheTTL is how long a session looked up for a token is
	// believed without asking the store again; zero means
	// DefaultSessionCacheTTL. A revocation made through this service drops
	// its entries at once; one made through another replica's goes unseen
	// here for at most this long.
	SessionCacheTTL time.Duration
}

// Session is what a successful sign-up or login yields.
type Session struct {
	ID        string // the session's id, the token's jti
	User      chat.User
	Token     string
	ExpiresAt time.Time
}

// Claims is what a verified token or a redeemed ticket says about its bearer.
type Claims struct {
	User      chat.User
	Session   string    // the id of the session the token names (its jti)
	ExpiresAt time.Time // when the token behind it expires
}

// Service authenticates users. It is safe for concurrent use.
type Service struct {
	store     Store
	secret    []byte
	tokenTTL  time.Duration
	ticketTTL time.Duration
	cost      int
	now       func() time.Time

	// hashSlots bounds the bcrypt work in flight. bcrypt is deliberately
	// slow (tens of milliseconds of CPU per call), so a burst of sign-ups or
	// a password-guessing run could otherwise occupy every core and starve
	// message delivery; excess requests queue here instead.
	hashSlots chan struct{}

	// dummyHash is compared against when the username is unknown, so that
	// answering "no such user" costs as much as a wrong password and the
	// response time does not reveal which usernames exist. It is made on
	// first use so that starting the server does not pay for it.
	dummyHash func() ([]byte, error)

	sessions *sessionCache
}

// New returns a Service. It panics when cfg is unusable (no secret, negative
// durations, a ticket lifetime over MaxTicketTTL, a cost bcrypt rejects):
// those are wiring mistakes the composition root must not make.
func New(store Store, cfg Config) *Service {
	if len(cfg.Secret) == 0 {
		panic("auth: Config.Secret is empty")
	}
	if cfg.TokenTTL < 0 || cfg.TicketTTL < 0 || cfg.SessionCacheTTL < 0 {
		panic("auth: Config.TokenTTL, Config.TicketTTL and Config.SessionCacheTTL must not be negative")
	}
	if cfg.TicketTTL > MaxTicketTTL {
		panic(fmt.Sprintf("auth: Config.TicketTTL %v exceeds %v", cfg.TicketTTL, MaxTicketTTL))
	}
	if cfg.PasswordCost != 0 && (cfg.PasswordCost < bcrypt.MinCost || cfg.PasswordCost > bcrypt.MaxCost) {
		panic(fmt.Sprintf("auth: Config.PasswordCost %d is outside [%d, %d]", cfg.PasswordCost, bcrypt.MinCost, bcrypt.MaxCost))
	}
	s := &Service{
		store:     store,
		secret:    cfg.Secret,
		tokenTTL:  cmp.Or(cfg.TokenTTL, DefaultTokenTTL),
		ticketTTL: cmp.Or(cfg.TicketTTL, DefaultTicketTTL),
		cost:      cmp.Or(cfg.PasswordCost, bcrypt.DefaultCost),
		now:       cfg.Now,
		// GOMAXPROCS rather than NumCPU: since Go 1.25 it follows the
		// container's CPU limit, while NumCPU counts every core of the node
		// and would make the bound meaningless under a Kubernetes limit.
		hashSlots: make(chan struct{}, runtime.GOMAXPROCS(0)),
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.sessions = newSessionCache(cmp.Or(cfg.SessionCacheTTL, DefaultSessionCacheTTL), s.now)
	s.dummyHash = sync.OnceValues(func() ([]byte, error) {
		return bcrypt.GenerateFromPassword(prehash("parley-dummy-password"), s.cost)
	})
	return s
}

// Register creates an account and signs it in. A taken username is an error
// of kind chat.ErrConflict; invalid input is chat.ErrInvalid.
func (s *Service) Register(ctx context.Context, username, password string) (Session, error) {
	if err := chat.ValidateUsername(username); err != nil {
		return Session{}, err
	}
	if err := validatePassword(password); err != nil {
		return Session{}, err
	}
	var hash []byte
	err := s.withHashSlot(ctx, func() (err error) {
		hash, err = bcrypt.GenerateFromPassword(prehash(password), s.cost)
		return err
	})
	if err != nil {
		return Session{}, fmt.Errorf("hash password: %w", err)
	}
	u := chat.User{ID: chat.NewID(s.now()), Username: username}
	if err := s.store.CreateUser(ctx, u, string(hash)); err != nil {
		return Session{}, fmt.Errorf("create user: %w", err)
	}
	return s.newSession(ctx, u)
}

// Login checks a username and password and signs the user in. Wrong
// credentials, including an unknown username, are ErrUnauthorized, with no
// hint of which part was wrong.
func (s *Service) Login(ctx context.Context, username, password string) (Session, error) {
	u, hash, err := s.checkPassword(ctx, username, password)
	if err != nil {
		return Session{}, err
	}
	sess, err := s.newSession(ctx, u)
	if err != nil {
		return Session{}, err
	}
	// A password change (or a deletion) that lands between the check and
	// the new session ends the account's other sessions before this one
	// exists, and would leave it live on the old password. So the
	// credentials are read again after it is made: if they still match, a
	// later change ends it as usual; if not, it ends here.
	_, now, err := s.store.Credentials(ctx, u.Username)
	if err == nil && now == hash {
		return sess, nil
	}
	if rerr := s.store.RevokeSession(ctx, sess.ID); rerr != nil && !errors.Is(rerr, chat.ErrNotFound) {
		return Session{}, fmt.Errorf("revoke a session made on changed credentials: %w", rerr)
	}
	if err != nil && !errors.Is(err, chat.ErrNotFound) {
		return Session{}, fmt.Errorf("look up credentials again: %w", err)
	}
	return Session{}, ErrUnauthorized
}

// checkPassword returns the user whose username and password these are,
// and the password hash it checked against.
// Wrong credentials, including an unknown or deleted user, are
// ErrUnauthorized and cost the same bcrypt work either way.
func (s *Service) checkPassword(ctx context.Context, username, password string) (chat.User, string, error) {
	u, stored, err := s.store.Credentials(ctx, username)
	if errors.Is(err, chat.ErrNotFound) {
		err := s.withHashSlot(ctx, func() error {
			dummy, err := s.dummyHash()
			if err == nil {
				_ = bcrypt.CompareHashAndPassword(dummy, prehash(password))
			}
			return nil
		})
		if err != nil {
			return chat.User{}, "", err
		}
		return chat.User{}, "", ErrUnauthorized
	}
	if err != nil {
		return chat.User{}, "", fmt.Errorf("look up credentials: %w", err)
	}
	var cmpErr error
	if err := s.withHashSlot(ctx, func() error {
		cmpErr = bcrypt.CompareHashAndPassword([]byte(stored), prehash(password))
		return nil
	}); err != nil {
		return chat.User{}, "", err
	}
	switch {
	case errors.Is(cmpErr, bcrypt.ErrMismatchedHashAndPassword):
		return chat.User{}, "", ErrUnauthorized
	case cmpErr != nil:
		// A stored hash bcrypt cannot read is our fault, not the user's.
		return chat.User{}, "", fmt.Errorf("check password of user %s: %w", u.ID, cmpErr)
	}
	return u, stored, nil
}

// withHashSlot runs f once one of the bcrypt slots is free, or gives up with
// the context's error when the request is cancelled while it waits.
func (s *Service) withHashSlot(ctx context.Context, f func() error) error {
	// Checked first because select picks at random among ready cases: a
	// cancelled request must not start an expensive hash.
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case s.hashSlots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.hashSlots }()
	return f()
}

func validatePassword(p string) error {
	if !utf8.ValidString(p) {
		return chat.Errorf(chat.ErrInvalid, "password must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(p); n < MinPasswordChars || n > MaxPasswordChars {
		return chat.Errorf(chat.ErrInvalid, "password must be %d to %d characters", MinPasswordChars, MaxPasswordChars)
	}
	return nil
}

// prehash condenses a password into what bcrypt is given. bcrypt reads at
// most 72 bytes (x/crypto refuses longer input outright), yet a 128-character
// password may take 512 bytes of UTF-8: hashed directly, passwords that share
// their first 72 bytes would be interchangeable. SHA-256 first keeps every
// byte significant. The digest is base64-encoded (44 bytes, under the limit)
// because raw digests can hold NUL bytes, which many bcrypt implementations
// take as the end of the input; this keeps the stored hashes checkable by any
// of them.
func prehash(password string) []byte {
	sum := sha256.Sum256([]byte(password))
	out := make([]byte, base64.StdEncoding.EncodedLen(len(sum)))
	base64.StdEncoding.Encode(out, sum[:])
	return out
}
