package chat_test

import (
	"fmt"
	"testing"

	"github.com/parleychat/parley/server/internal/chat"
)

func TestHubDropsASlowMemberWithoutSkippingOrStallingOthers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, chat.HubOptions{})
	slow := &recorder{cap: 4} // joined, alice online, and two messages fit
	var fast recorder
	f.mustJoin(t, slow, bob, nil)
	f.mustJoin(t, &fast, alice, nil)
	for i := range 5 {
		f.mustSend(t, alice, fmt.Sprint(i))
	}
	if !slow.isSlow() {
		t.Fatal("got slow member still subscribed, want it told it is too slow")
	}
	wantSeqs(t, slow.seqs(), 1, 2)
	wantSeqs(t, fast.seqs(), 1, 5)
}
