package chat_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/parleychat/parley/server/internal/chat"
)

func TestHubDeliversOutOfOrderArrivalsInSeqOrder(t *testing.T) {
	t.Parallel()
	f := newFixture(t, chat.HubOptions{GapWait: time.Hour})
	var r recorder
	f.mustJoin(t, &r, bob, nil)
	msgs := f.appendN(t, 4)
	for _, i := range []int{2, 0, 3, 1} {
		f.hub.Deliver(context.Background(), msgs[i])
	}
	wantSeqs(t, r.seqs(), 1, 4)
}

func TestHubDropsDuplicateDeliveries(t *testing.T) {
	t.Parallel()
	f := newFixture(t, chat.HubOptions{GapWait: time.Hour})
	var r recorder
	f.mustJoin(t, &r, bob, nil)
	msgs := f.appendN(t, 2)
	for _, m := range []chat.Message{msgs[0], msgs[0], msgs[1], msgs[0], msgs[1]} {
		f.hub.Deliver(context.Background(), m)
	}
	wantSeqs(t, r.seqs(), 1, 2)
}

func TestHubBackfillsAGapFromTheStore(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const gapWait = time.Second
		f := newFixture(t, chat.HubOptions{GapWait: gapWait})
		var r recorder
		f.mustJoin(t, &r, bob, nil)
		msgs := f.appendN(t, 5)
		f.hub.Deliver(context.Background(), msgs[4]) // 1..4 never arrive live
		advance(gapWait / 2)
		if got := r.seqs(); len(got) != 0 {
			t.Fatalf("got seqs %v before GapWait, want none while 1..4 may still arrive live", got)
		}
		stepUntil(t, "backfill", func() bool { return len(r.seqs()) == 5 })
		wantSeqs(t, r.seqs(), 1, 5)
	})
}
