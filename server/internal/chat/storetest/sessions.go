package storetest

import (
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/parleychat/parley/server/internal/chat"
)

func testSessions(t *testing.T, open opener) {
	t.Run("a created session is live with every field", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		want := f.mustCreateSession(f.mustCreateUser("alice"))

		got := f.mustGetSession(want.ID, want.Expires.Add(-time.Second))
		if got != want {
			t.Errorf("Session: got %+v, want %+v", got, want)
		}
	})

	for _, tc := range []struct {
		name  string
		after time.Duration // how long after the session's expiry it is asked for
	}{
		{"a session asked for after it expires is not found", time.Second},
		{"a session asked for the instant it expires is not found", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := openFixture(t, open)
			sess := f.mustCreateSession(f.mustCreateUser("alice"))

			f.wantNoSession(sess.ID, sess.Expires.Add(tc.after), "expired")
			f.wantStatuses(sess.Expires.Add(tc.after), map[string]chat.SessionStatus{sess.ID: chat.SessionEnded})
		})
	}

	t.Run("an unknown session is not found and ended", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		sess := f.mustCreateSession(f.mustCreateUser("alice"))
		now := sess.Expires.Add(-time.Second)

		f.wantNoSession("not-"+sess.ID, now, "unknown")
		f.wantStatuses(now, map[string]chat.SessionStatus{"not-" + sess.ID: chat.SessionEnded, sess.ID: chat.SessionLive})
	})

	t.Run("a revoked session is not found and ended", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		alice := f.mustCreateUser("alice")
		revoked, kept := f.mustCreateSession(alice), f.mustCreateSession(alice)
		now := revoked.Expires.Add(-time.Second)
		if err := f.store.RevokeSession(f.ctx, revoked.ID); err != nil {
			t.Fatalf("RevokeSession: %v", err)
		}

		f.wantNoSession(revoked.ID, now, "revoked")
		f.mustGetSession(kept.ID, now)
		f.wantStatuses(now, map[string]chat.SessionStatus{revoked.ID: chat.SessionEnded, kept.ID: chat.SessionLive})
		if err := f.store.RevokeSession(f.ctx, revoked.ID); err != nil {
			t.Errorf("RevokeSession a second time: got %v, want nil", err)
		}
	})

	t.Run("revoking a user's sessions spares the one excepted and other users'", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		alice, bob := f.mustCreateUser("alice"), f.mustCreateUser("bob")
		current, other1, other2 := f.mustCreateSession(alice), f.mustCreateSession(alice), f.mustCreateSession(alice)
		bobs := f.mustCreateSession(bob)
		now := current.Expires.Add(-time.Second)

		if err := f.store.RevokeSessions(f.ctx, alice.ID, current.ID); err != nil {
			t.Fatalf("RevokeSessions: %v", err)
		}
		f.wantStatuses(now, map[string]chat.SessionStatus{
			current.ID: chat.SessionLive, other1.ID: chat.SessionEnded, other2.ID: chat.SessionEnded, bobs.ID: chat.SessionLive,
		})

		if err := f.store.RevokeSessions(f.ctx, alice.ID, ""); err != nil {
			t.Fatalf("RevokeSessions(no exception): %v", err)
		}
		f.wantStatuses(now, map[string]chat.SessionStatus{current.ID: chat.SessionEnded, bobs.ID: chat.SessionLive})
	})

	t.Run("statuses of no sessions are an empty map", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		f.wantStatuses(time.Now(), map[string]chat.SessionStatus{})
	})

	t.Run("a new password replaces the old one", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		alice := f.mustCreateUser("alice")
		if err := f.store.SetPassword(f.ctx, alice.ID, "new hash"); err != nil {
			t.Fatalf("SetPassword: %v", err)
		}
		if _, hash, err := f.store.Credentials(f.ctx, "alice"); err != nil || hash != "new hash" {
			t.Errorf("Credentials after SetPassword: got hash %q and error %v, want %q and nil", hash, err, "new hash")
		}
	})

	t.Run("the password of an unknown user is not found", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		alice := f.mustCreateUser("alice")
		if err := f.store.SetPassword(f.ctx, "not-"+alice.ID, "new hash"); !errors.Is(err, chat.ErrNotFound) {
			t.Errorf("SetPassword(unknown): got %v, want ErrNotFound", err)
		}
	})
}

func testDeletedUsers(t *testing.T, open opener) {
	t.Run("a deleted user's sessions end and its credentials are gone", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		alice, bob := f.mustCreateUser("alice"), f.mustCreateUser("bob")
		first, second, bobs := f.mustCreateSession(alice), f.mustCreateSession(alice), f.mustCreateSession(bob)
		now := first.Expires.Add(-time.Second)
		f.mustDeleteUser(alice)

		f.wantNoSession(first.ID, now, "of a deleted user")
		f.wantStatuses(now, map[string]chat.SessionStatus{
			first.ID: chat.SessionUserDeleted, second.ID: chat.SessionUserDeleted, bobs.ID: chat.SessionLive,
		})
		if _, _, err := f.store.Credentials(f.ctx, "alice"); !errors.Is(err, chat.ErrNotFound) {
			t.Errorf("Credentials(deleted): got error %v, want ErrNotFound", err)
		}
		f.wantCredentials("bob", bob)
	})

	t.Run("a deleted user's name stays taken in any letter case", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		f.mustDeleteUser(f.mustCreateUser("Alice"))

		for _, name := range []string{"Alice", "alice", "ALICE"} {
			err := f.store.CreateUser(f.ctx, chat.User{ID: chat.NewID(f.tick()), Username: name}, "another hash")
			if !errors.Is(err, chat.ErrConflict) {
				t.Errorf("CreateUser(%q) after its deletion: got error %v, want ErrConflict", name, err)
			}
		}
	})

	t.Run("a deleted user's messages stay, marked deleted", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		alice, bob := f.mustCreateUser("alice"), f.mustCreateUser("bob")
		room := f.mustCreateRoom("lobby")
		want := []chat.Message{f.mustSend(room, alice, "hi"), f.mustSend(room, bob, "hello"), f.mustSend(room, alice, "bye")}
		f.mustDeleteUser(alice)
		for i := range want {
			want[i].User.Deleted = want[i].User.ID == alice.ID
		}

		if diff := messagesDiff(f.mustReadAll(room.ID), want); diff != "" {
			t.Errorf("History forward: %s", diff)
		}
		got, _ := f.mustReadHistory(room.ID, chat.Page{Backward: true, Cursor: 4, Limit: 10})
		if diff := messagesDiff(got, want); diff != "" {
			t.Errorf("History backward: %s", diff)
		}
	})

	t.Run("an unknown or deleted user cannot be deleted or given a password", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		alice := f.mustCreateUser("alice")
		f.mustDeleteUser(alice)

		for _, id := range []string{alice.ID, "not-" + alice.ID} {
			if err := f.store.DeleteUser(f.ctx, id); !errors.Is(err, chat.ErrNotFound) {
				t.Errorf("DeleteUser(%s): got %v, want ErrNotFound", id, err)
			}
			if err := f.store.SetPassword(f.ctx, id, "new hash"); !errors.Is(err, chat.ErrNotFound) {
				t.Errorf("SetPassword(%s): got %v, want ErrNotFound", id, err)
			}
		}
	})
}

// mustCreateSession creates a session of u that expires in an hour of real
// time, as a store may drop expired sessions by its own clock.
func (f *fixture) mustCreateSession(u chat.User) chat.Session {
	f.t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	s := chat.Session{ID: "session-" + chat.NewID(now), User: u, Expires: now.Add(time.Hour)}
	if err := f.store.CreateSession(f.ctx, s); err != nil {
		f.t.Fatalf("CreateSession: %v", err)
	}
	return s
}

func (f *fixture) mustGetSession(id string, now time.Time) chat.Session {
	f.t.Helper()
	s, err := f.store.Session(f.ctx, id, now)
	if err != nil {
		f.t.Fatalf("Session: %v", err)
	}
	return s
}

// wantNoSession checks that asking for id at now is ErrNotFound; which says
// what kind of session it is.
func (f *fixture) wantNoSession(id string, now time.Time, which string) {
	f.t.Helper()
	if _, err := f.store.Session(f.ctx, id, now); !errors.Is(err, chat.ErrNotFound) {
		f.t.Errorf("Session(%s): got error %v, want ErrNotFound", which, err)
	}
}

// wantStatuses asks for the statuses of want's sessions at now, all at once.
func (f *fixture) wantStatuses(now time.Time, want map[string]chat.SessionStatus) {
	f.t.Helper()
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	got, err := f.store.SessionStatuses(f.ctx, ids, now)
	if err != nil {
		f.t.Fatalf("SessionStatuses: %v", err)
	}
	// Live sessions have no entry.
	want = maps.Clone(want)
	maps.DeleteFunc(want, func(_ string, st chat.SessionStatus) bool { return st == chat.SessionLive })
	if !maps.Equal(got, want) {
		f.t.Errorf("SessionStatuses: got %v, want %v", got, want)
	}
}

func (f *fixture) mustDeleteUser(u chat.User) {
	f.t.Helper()
	if err := f.store.DeleteUser(f.ctx, u.ID); err != nil {
		f.t.Fatalf("DeleteUser(%q): %v", u.Username, err)
	}
}
