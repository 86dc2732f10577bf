package auth_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/parleychat/parley/internal/testenv"
	"github.com/parleychat/parley/server/internal/auth"
	"github.com/parleychat/parley/server/internal/chat"
)

var testSecret = []byte("test-secret-test-secret-test-sec")

func TestRegisterThenLogin(t *testing.T) {
	t.Parallel()
	svc, _, _ := newService(t)
	ctx := t.Context()

	reg, err := svc.Register(ctx, "alice", "correct horse")
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	if reg.User.ID == "" || reg.User.Username != "alice" || reg.Token == "" {
		t.Fatalf("Register returned %+v, want a user id, username alice and a token", reg)
	}

	login, err := svc.Login(ctx, "alice", "correct horse")
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if login.User != reg.User {
		t.Errorf("Login user = %+v, want %+v", login.User, reg.User)
	}

	for name, s := range map[string]auth.Session{"register": reg, "login": login} {
		c, err := svc.Verify(t.Context(), s.Token)
		if err != nil {
			t.Fatalf("Verify(%s token): %v", name, err)
		}
		if c.User != reg.User || !c.ExpiresAt.Equal(s.ExpiresAt) {
			t.Errorf("Verify(%s token) = %+v, want user %+v expiring %v", name, c, reg.User, s.ExpiresAt)
		}
	}
}

func TestSessionExpiresAfterTokenTTL(t *testing.T) {
	t.Parallel()
	svc, _, clock := newService(t)
	s := mustRegister(t, svc, "alice", "correct horse")
	if want := clock.Now().Add(time.Hour); !s.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", s.ExpiresAt, want)
	}
}

func TestRegisterTakenUsernameIsConflict(t *testing.T) {
	t.Parallel()
	svc, _, _ := newService(t)
	mustRegister(t, svc, "alice", "correct horse")
	_, err := svc.Register(t.Context(), "Alice", "another password")
	if !errors.Is(err, chat.ErrConflict) {
		t.Fatalf("Register of a taken username: got %v, want chat.ErrConflict", err)
	}
}

func TestRegisterValidatesInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		username string
		password string
		wantErr  bool
	}{
		{"valid", "alice", "password", false},
		{"username too short", "al", "password", true},
		{"username too long", strings.Repeat("a", 33), "password", true},
		{"username longest", strings.Repeat("a", 32), "password", false},
		{"username with a space", "al ice", "password", true},
		{"username with non-ASCII letter", "alicé", "password", true},
		{"password empty", "alice", "", true},
		{"password 7 characters", "alice", "passwor", true},
		{"password 8 characters", "alice", "password", false},
		{"password 128 characters", "alice", strings.Repeat("p", 128), false},
		{"password 129 characters", "alice", strings.Repeat("p", 129), true},
		{"password 7 two-byte characters (14 bytes)", "alice", strings.Repeat("é", 7), true},
		{"password 128 four-byte characters (512 bytes)", "alice", strings.Repeat("😀", 128), false},
		{"password 129 two-byte characters", "alice", strings.Repeat("é", 129), true},
		{"password not UTF-8", "alice", strings.Repeat("\xff", 10), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, _, _ := newService(t)
			_, err := svc.Register(t.Context(), tt.username, tt.password)
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Register: got %v, want success", err)
				}
				return
			}
			if !errors.Is(err, chat.ErrInvalid) {
				t.Fatalf("Register: got %v, want chat.ErrInvalid", err)
			}
			var ce *chat.Error
			if !errors.As(err, &ce) || ce.Msg == "" {
				t.Errorf("Register: got %v, want a *chat.Error with a message for the client", err)
			}
		})
	}
}

func TestLongPasswordsDifferingOnlyPast72BytesAreDistinct(t *testing.T) {
	t.Parallel()
	svc, _, _ := newService(t)
	prefix := strings.Repeat("x", 100)
	mustRegister(t, svc, "alice", prefix+"-one")

	if _, err := svc.Login(t.Context(), "alice", prefix+"-two"); !errors.Is(err, auth.ErrUnauthorized) {
		t.Fatalf("Login with a password sharing the first 100 bytes: got %v, want ErrUnauthorized", err)
	}
	if _, err := svc.Login(t.Context(), "alice", prefix+"-one"); err != nil {
		t.Fatalf("Login with the right long password: %v", err)
	}
}

func TestLoginRefusesWrongCredentials(t *testing.T) {
	t.Parallel()
	svc, _, _ := newService(t)
	mustRegister(t, svc, "alice", "correct horse")
	tests := []struct{ name, username, password string }{
		{"wrong password", "alice", "battery staple"},
		{"unknown user", "bob", "correct horse"},
		{"empty password", "alice", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := svc.Login(t.Context(), tt.username, tt.password)
			if !errors.Is(err, auth.ErrUnauthorized) {
				t.Fatalf("got %v, want ErrUnauthorized", err)
			}
			if err.Error() != "wrong username or password" {
				t.Errorf("message = %q, want %q", err.Error(), "wrong username or password")
			}
		})
	}
}

func TestStoreUnavailablePassesThrough(t *testing.T) {
	t.Parallel()
	svc, store, _ := newService(t)
	s := mustRegister(t, svc, "alice", "correct horse")
	claims, err := svc.Verify(t.Context(), s.Token)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	ticket, _, err := svc.IssueTicket(t.Context(), claims)
	if err != nil {
		t.Fatalf("IssueTicket: %v", err)
	}

	store.setFailure(chat.Errorf(chat.ErrUnavailable, "store is down"))
	ctx := t.Context()
	calls := map[string]func() error{
		"Register": func() error { _, err := svc.Register(ctx, "bob", "correct horse"); return err },
		"Login":    func() error { _, err := svc.Login(ctx, "alice", "correct horse"); return err },
		"IssueTicket": func() error {
			_, _, err := svc.IssueTicket(ctx, claims)
			return err
		},
		"RedeemTicket": func() error { _, err := svc.RedeemTicket(ctx, ticket); return err },
	}
	for name, call := range calls {
		err := call()
		if !errors.Is(err, chat.ErrUnavailable) || errors.Is(err, auth.ErrUnauthorized) {
			t.Errorf("%s: got %v, want chat.ErrUnavailable", name, err)
		}
	}
}

func TestVerifyRefusesBadTokens(t *testing.T) {
	t.Parallel()
	svc, _, clock := newService(t)
	s := mustRegister(t, svc, "alice", "correct horse")
	c, err := svc.Verify(t.Context(), s.Token)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	now := clock.Now()
	valid := jwt.MapClaims{"sub": s.User.ID, "name": "alice", "jti": c.Session, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	with := func(key string, value any) jwt.MapClaims {
		c := jwt.MapClaims{key: value}
		for k, v := range valid {
			if k != key {
				c[k] = v
			}
		}
		return c
	}

	without := func(key string) jwt.MapClaims {
		c := jwt.MapClaims{}
		for k, v := range valid {
			if k != key {
				c[k] = v
			}
		}
		return c
	}

	tests := []struct {
		name  string
		token string
	}{
		{"empty", ""},
		{"garbage", "not.a.token"},
		{"tampered payload", tamper(s.Token)},
		{"another secret", sign(t, jwt.SigningMethodHS256, valid, []byte("another secret, just as long...."))},
		{"alg none", sign(t, jwt.SigningMethodNone, valid, jwt.UnsafeAllowNoneSignatureType)},
		{"HS512 with the right secret", sign(t, jwt.SigningMethodHS512, valid, testSecret)},
		{"no exp", sign(t, jwt.SigningMethodHS256, without("exp"), testSecret)},
		{"no sub", sign(t, jwt.SigningMethodHS256, without("sub"), testSecret)},
		{"no name", sign(t, jwt.SigningMethodHS256, without("name"), testSecret)},
		{"no jti (a token from before sessions)", sign(t, jwt.SigningMethodHS256, without("jti"), testSecret)},
		{"a session the store does not have", sign(t, jwt.SigningMethodHS256, with("jti", "no-such-session"), testSecret)},
		{"a user the session is not of", sign(t, jwt.SigningMethodHS256, with("sub", "another-user"), testSecret)},
		{"expired", sign(t, jwt.SigningMethodHS256, with("exp", now.Add(-time.Second).Unix()), testSecret)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := svc.Verify(t.Context(), tt.token); !errors.Is(err, auth.ErrUnauthorized) {
				t.Fatalf("Verify: got %v, want ErrUnauthorized", err)
			}
		})
	}

	// The hand-made valid token proves the refusals above are for the
	// reason each case names.
	if _, err := svc.Verify(t.Context(), sign(t, jwt.SigningMethodHS256, valid, testSecret)); err != nil {
		t.Fatalf("Verify of a well-formed token: %v", err)
	}
}

func TestTokenExpires(t *testing.T) {
	t.Parallel()
	svc, _, clock := newService(t)
	s := mustRegister(t, svc, "alice", "correct horse")

	clock.Advance(time.Hour - time.Second)
	if _, err := svc.Verify(t.Context(), s.Token); err != nil {
		t.Fatalf("Verify a second before expiry: %v", err)
	}
	clock.Advance(time.Second)
	if _, err := svc.Verify(t.Context(), s.Token); !errors.Is(err, auth.ErrUnauthorized) {
		t.Fatalf("Verify at expiry: got %v, want ErrUnauthorized", err)
	}
}

func TestTicketIsSingleUse(t *testing.T) {
	t.Parallel()
	svc, store, clock := newService(t)
	claims := mustLogin(t, svc)

	ticket, expires, err := svc.IssueTicket(t.Context(), claims)
	if err != nil {
		t.Fatalf("IssueTicket: %v", err)
	}
	if want := clock.Now().Add(30 * time.Second); !expires.Equal(want) {
		t.Errorf("ticket expires %v, want %v (now + TicketTTL)", expires, want)
	}
	if store.holdsTicket(ticket) {
		t.Error("the store holds the ticket itself, want only its hash")
	}

	got, err := svc.RedeemTicket(t.Context(), ticket)
	if err != nil {
		t.Fatalf("first RedeemTicket: %v", err)
	}
	if got.User != claims.User || !got.ExpiresAt.Equal(claims.ExpiresAt) {
		t.Errorf("RedeemTicket = %+v, want %+v", got, claims)
	}
	if _, err := svc.RedeemTicket(t.Context(), ticket); !errors.Is(err, auth.ErrUnauthorized) {
		t.Fatalf("second RedeemTicket: got %v, want ErrUnauthorized", err)
	}
}

func TestUnknownTicketIsUnauthorized(t *testing.T) {
	t.Parallel()
	svc, _, _ := newService(t)
	for _, ticket := range []string{"", "no-such-ticket"} {
		if _, err := svc.RedeemTicket(t.Context(), ticket); !errors.Is(err, auth.ErrUnauthorized) {
			t.Errorf("RedeemTicket(%q): got %v, want ErrUnauthorized", ticket, err)
		}
	}
}

func TestTicketExpires(t *testing.T) {
	t.Parallel()
	svc, _, clock := newService(t)
	claims := mustLogin(t, svc)
	ticket, _, err := svc.IssueTicket(t.Context(), claims)
	if err != nil {
		t.Fatalf("IssueTicket: %v", err)
	}
	clock.Advance(30 * time.Second)
	if _, err := svc.RedeemTicket(t.Context(), ticket); !errors.Is(err, auth.ErrUnauthorized) {
		t.Fatalf("RedeemTicket after TicketTTL: got %v, want ErrUnauthorized", err)
	}
}

func TestTicketNeverOutlivesSession(t *testing.T) {
	t.Parallel()
	svc, _, clock := newService(t)
	claims := mustLogin(t, svc)

	clock.Advance(time.Hour - 10*time.Second) // the token has 10s left
	ticket, expires, err := svc.IssueTicket(t.Context(), claims)
	if err != nil {
		t.Fatalf("IssueTicket: %v", err)
	}
	if !expires.Equal(claims.ExpiresAt) {
		t.Errorf("ticket expires %v, want the session's expiry %v", expires, claims.ExpiresAt)
	}
	clock.Advance(10 * time.Second)
	if _, err := svc.RedeemTicket(t.Context(), ticket); !errors.Is(err, auth.ErrUnauthorized) {
		t.Fatalf("RedeemTicket after the session expired: got %v, want ErrUnauthorized", err)
	}

	if _, _, err := svc.IssueTicket(t.Context(), claims); !errors.Is(err, auth.ErrUnauthorized) {
		t.Fatalf("IssueTicket for an expired session: got %v, want ErrUnauthorized", err)
	}
}

func TestRandomSecretIsFresh(t *testing.T) {
	t.Parallel()
	a, b := auth.RandomSecret(), auth.RandomSecret()
	if len(a) != 32 || string(a) == string(b) {
		t.Fatalf("RandomSecret gave %x and %x, want two different 32-byte secrets", a, b)
	}
}

// newService returns a Service over an empty fakeStore, with a one-hour token
// lifetime, the default ticket lifetime and a clock that moves only when told.
func newService(t *testing.T) (*auth.Service, *fakeStore, *testenv.Clock) {
	t.Helper()
	store := newFakeStore()
	clock := testenv.NewClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	svc := auth.New(store, auth.Config{
		Secret:       testSecret,
		TokenTTL:     time.Hour,
		PasswordCost: bcrypt.MinCost,
		Now:          clock.Now,
	})
	return svc, store, clock
}

func mustRegister(t *testing.T, svc *auth.Service, username, password string) auth.Session {
	t.Helper()
	s, err := svc.Register(t.Context(), username, password)
	if err != nil {
		t.Fatalf("Register(%q): %v", username, err)
	}
	return s
}

// mustLogin registers a user and returns the claims of its token.
func mustLogin(t *testing.T, svc *auth.Service) auth.Claims {
	t.Helper()
	s := mustRegister(t, svc, "alice", "correct horse")
	c, err := svc.Verify(t.Context(), s.Token)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return c
}

func sign(t *testing.T, method jwt.SigningMethod, claims jwt.MapClaims, key any) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("sign test token: %v", err)
	}
	return s
}

// tamper changes one character of a token's payload, keeping its signature.
func tamper(token string) string {
	parts := strings.Split(token, ".")
	p := []byte(parts[1])
	if p[5] == 'A' {
		p[5] = 'B'
	} else {
		p[5] = 'A'
	}
	parts[1] = string(p)
	return strings.Join(parts, ".")
}

// fakeStore keeps users, tickets and sessions in maps, following the
// chat.Store contract for the methods auth uses. The real stores are held to
// the same contract by their own conformance suite.
type fakeStore struct {
	mu       sync.Mutex
	users    map[string]fakeUser // by lower-case username
	tickets  map[string]chat.Ticket
	sessions map[string]chat.Session
	lookups  int    // calls of Session, to tell the cache's answers from the store's
	fail     error  // when set, every call returns it
	hook     func() // run by the next CreateSession, before it stores
}

type fakeUser struct {
	user    chat.User
	hash    string
	deleted bool
}

func newFakeStore() *fakeStore {
	return &fakeStore{users: map[string]fakeUser{}, tickets: map[string]chat.Ticket{}, sessions: map[string]chat.Session{}}
}

func (s *fakeStore) setFailure(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

func (s *fakeStore) holdsTicket(ticket string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.tickets[ticket]
	return ok
}

func (s *fakeStore) CreateUser(_ context.Context, u chat.User, passwordHash string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	key := strings.ToLower(u.Username)
	if _, ok := s.users[key]; ok {
		return chat.Errorf(chat.ErrConflict, "username %q is taken", u.Username)
	}
	s.users[key] = fakeUser{user: u, hash: passwordHash}
	return nil
}

func (s *fakeStore) Credentials(_ context.Context, username string) (chat.User, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return chat.User{}, "", s.fail
	}
	u, ok := s.users[strings.ToLower(username)]
	if !ok || u.deleted {
		return chat.User{}, "", chat.Errorf(chat.ErrNotFound, "no such user")
	}
	return u.user, u.hash, nil
}

func (s *fakeStore) SaveTicket(_ context.Context, t chat.Ticket) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.tickets[t.Hash] = t
	return nil
}

func (s *fakeStore) TakeTicket(_ context.Context, hash string, now time.Time) (chat.Ticket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return chat.Ticket{}, s.fail
	}
	t, ok := s.tickets[hash]
	delete(s.tickets, hash)
	if !ok || !now.Before(t.Expires) {
		return chat.Ticket{}, chat.Errorf(chat.ErrNotFound, "no such ticket")
	}
	return t, nil
}
