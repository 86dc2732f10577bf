package chat_test

import (
	"context"
	"testing"
	"time"

	"github.com/parleychat/parley/server/internal/chat"
)

func TestHubDeliversOutOfOrderArrivalsInSeqOrder(t *testing.T) {
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
	f := newFixture(t, chat.HubOptions{GapWait: 10 * time.Millisecond})
	var r recorder
	f.mustJoin(t, &r, bob, nil)
	msgs := f.appendN(t, 5)
	f.hub.Deliver(context.Background(), msgs[4]) // 1..4 never arrive live
	eventually(t, "backfill", func() bool { return len(r.seqs()) == 5 })
	wantSeqs(t, r.seqs(), 1, 5)
}
