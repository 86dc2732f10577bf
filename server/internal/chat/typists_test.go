package chat

import (
	"fmt"
	"testing"
	"time"
)

// The merge state of a room holds only users who typed lately: a room that
// many users typed in once does not keep them all.
func TestTypistsForgetsUsersWhoStoppedTyping(t *testing.T) {
	t.Parallel()
	var ty typists
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 10000 {
		ty.announce(fmt.Sprint("u", i), start, time.Second)
	}
	ty.announce("late", start.Add(time.Second), time.Second)
	if got := len(ty.last); got != 1 {
		t.Fatalf("got %d users remembered an interval later, want 1", got)
	}
}
