package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/parleychat/parley/server/internal/chat"
)

func testTickets(t *testing.T, open opener) {
	t.Run("a saved ticket is taken with every field", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		want := f.mustSaveTicket(f.mustCreateUser("alice"))

		got := f.mustTakeTicket(want.Hash, want.Expires.Add(-time.Second))
		if diff := ticketDiff(got, want); diff != "" {
			t.Errorf("TakeTicket: %s", diff)
		}
	})

	t.Run("a ticket is taken only once", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		ticket := f.mustSaveTicket(f.mustCreateUser("alice"))
		now := ticket.Expires.Add(-time.Second)
		f.mustTakeTicket(ticket.Hash, now)

		f.wantNoTicket(ticket.Hash, now, "a second time")
	})

	t.Run("tickets are taken independently", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		alice := f.mustCreateUser("alice")
		first, second := f.mustSaveTicket(alice), f.mustSaveTicket(alice)
		f.mustTakeTicket(first.Hash, first.Expires.Add(-time.Second))

		got := f.mustTakeTicket(second.Hash, second.Expires.Add(-time.Second))
		if diff := ticketDiff(got, second); diff != "" {
			t.Errorf("TakeTicket(second): %s", diff)
		}
	})

	for _, tc := range []struct {
		name  string
		after time.Duration // how long after the ticket's expiry it is taken
	}{
		{"a ticket taken after it expires is not found", time.Second},
		{"a ticket taken the instant it expires is not found", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := openFixture(t, open)
			ticket := f.mustSaveTicket(f.mustCreateUser("alice"))

			f.wantNoTicket(ticket.Hash, ticket.Expires.Add(tc.after), "expired")
			f.wantNoTicket(ticket.Hash, ticket.Expires.Add(-time.Second), "after a take while expired")
		})
	}

	t.Run("an unknown ticket is not found", func(t *testing.T) {
		t.Parallel()
		f := openFixture(t, open)
		ticket := f.mustSaveTicket(f.mustCreateUser("alice"))

		f.wantNoTicket("not-"+ticket.Hash, ticket.Expires.Add(-time.Second), "unknown")
	})
}

// mustSaveTicket saves a ticket for u that expires in a minute of real time,
// as a store may drop expired tickets by its own clock.
func (f *fixture) mustSaveTicket(u chat.User) chat.Ticket {
	f.t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	t := chat.Ticket{
		Hash:           "ticket-hash-" + chat.NewID(now),
		User:           u,
		Session:        "session-" + chat.NewID(now),
		SessionExpires: now.Add(time.Hour),
		Expires:        now.Add(time.Minute),
	}
	if err := f.store.SaveTicket(f.ctx, t); err != nil {
		f.t.Fatalf("SaveTicket: %v", err)
	}
	return t
}

func (f *fixture) mustTakeTicket(hash string, now time.Time) chat.Ticket {
	f.t.Helper()
	t, err := f.store.TakeTicket(f.ctx, hash, now)
	if err != nil {
		f.t.Fatalf("TakeTicket: %v", err)
	}
	return t
}

// wantNoTicket checks that taking hash at now is ErrNotFound; which says what
// kind of take it is.
func (f *fixture) wantNoTicket(hash string, now time.Time, which string) {
	f.t.Helper()
	_, err := f.store.TakeTicket(f.ctx, hash, now)
	if !errors.Is(err, chat.ErrNotFound) {
		f.t.Errorf("TakeTicket(%s): got error %v, want ErrNotFound", which, err)
	}
}

// ticketDiff describes the first field in which got differs from want, or
// returns "" when they are the same ticket.
func ticketDiff(got, want chat.Ticket) string {
	switch {
	case got.Hash != want.Hash:
		return fmt.Sprintf("got hash %q, want %q", got.Hash, want.Hash)
	case got.User != want.User:
		return fmt.Sprintf("got user %+v, want %+v", got.User, want.User)
	case got.Session != want.Session:
		return fmt.Sprintf("got session %q, want %q", got.Session, want.Session)
	case !got.SessionExpires.Equal(want.SessionExpires):
		return fmt.Sprintf("got session expiry %v, want %v", got.SessionExpires, want.SessionExpires)
	case !got.Expires.Equal(want.Expires):
		return fmt.Sprintf("got expiry %v, want %v", got.Expires, want.Expires)
	}
	return ""
}
