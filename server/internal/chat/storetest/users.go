package storetest

import (
	"errors"
	"testing"

	"github.com/parleychat/parley/server/internal/chat"
)

func testUsers(t *testing.T, open opener) {
	t.Run("credentials return the user and its password hash", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		alice := f.mustCreateUser("Alice")
		f.mustCreateUser("bob")

		f.wantCredentials("Alice", alice)
	})

	t.Run("credentials match the username in any letter case", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		alice := f.mustCreateUser("Alice")

		for _, name := range []string{"alice", "ALICE", "aLiCe"} {
			f.wantCredentials(name, alice)
		}
	})

	t.Run("credentials of an unknown user are not found", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		f.mustCreateUser("alice")

		_, _, err := f.store.Credentials(f.ctx, "alicia")
		if !errors.Is(err, chat.ErrNotFound) {
			t.Fatalf("Credentials(unknown): got error %v, want ErrNotFound", err)
		}
	})

	for _, tc := range []struct {
		name, first, second string
	}{
		{"a taken username conflicts", "alice", "alice"},
		{"a username taken in another letter case conflicts", "alice", "ALICE"},
		{"a username taken in mixed case conflicts", "Alice.B-c_1", "aLICE.b-C_1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := openFixture(t, open)
			first := f.mustCreateUser(tc.first)

			second := chat.User{ID: chat.NewID(f.clock), Username: tc.second}
			err := f.store.CreateUser(f.ctx, second, "another hash")
			if !errors.Is(err, chat.ErrConflict) {
				t.Fatalf("CreateUser(%q) after %q: got error %v, want ErrConflict", tc.second, tc.first, err)
			}
			f.wantCredentials(tc.second, first)
		})
	}
}

// wantCredentials checks that username signs in as u with u's password hash.
func (f *fixture) wantCredentials(username string, u chat.User) {
	f.t.Helper()
	got, hash, err := f.store.Credentials(f.ctx, username)
	if err != nil {
		f.t.Fatalf("Credentials(%q): %v", username, err)
	}
	if got != u {
		f.t.Errorf("Credentials(%q): got user %+v, want %+v", username, got, u)
	}
	if want := passwordHashOf(u.Username); hash != want {
		f.t.Errorf("Credentials(%q): got hash %q, want %q", username, hash, want)
	}
}
