package memstore

import (
	"fmt"
	"testing"
	"time"

	"github.com/parleychat/parley/server/internal/chat"
)

// The idempotency index must shrink with the history, or a long-lived room
// would grow without bound however small its history limit.
func TestIdempotencyIndexIsBoundedByHistoryLimit(t *testing.T) {
	t.Parallel()
	const limit = 10
	s := New(Options{HistoryLimit: limit})
	room, err := s.CreateRoom(t.Context(), chat.Room{ID: "r", Name: "general"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		d := chat.Draft{ID: fmt.Sprint(i), Room: room.ID, ClientID: fmt.Sprint("c", i), User: chat.User{ID: "u"}}
		if _, _, err := s.Append(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}

	rm := s.rooms[room.ID]
	if got := len(rm.seqOf); got != limit {
		t.Errorf("idempotency index: got %d entries, want %d", got, limit)
	}
	if got := cap(rm.kept); got != limit {
		t.Errorf("kept messages: got capacity %d, want %d", got, limit)
	}
}

func TestSavingDropsExpiredTickets(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s := New(Options{Now: func() time.Time { return now }})
	save := func(prefix string, n int) {
		for i := range n {
			tk := chat.Ticket{Hash: fmt.Sprint(prefix, i), Expires: now.Add(time.Minute)}
			if err := s.SaveTicket(t.Context(), tk); err != nil {
				t.Fatal(err)
			}
		}
	}

	save("old", 1000)
	now = now.Add(2 * time.Minute)
	save("new", 1000)

	if got := len(s.tickets); got != 1000 {
		t.Errorf("held tickets: got %d, want the 1000 live ones", got)
	}
	if _, err := s.TakeTicket(t.Context(), "new0", now); err != nil {
		t.Errorf("TakeTicket(live): got error %v, want nil", err)
	}
}
