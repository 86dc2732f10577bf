// Package stats is the load generator's view of itself: what its virtual
// users hold, how late it dispatched sends, the CPU it used, and the
// series and progress lines that show a run while it goes on. The
// ledger counts what the server did; this counts what the generator did,
// which must stay small for the ledger's figures to be the server's.
package stats

import (
	"sync/atomic"

	"github.com/parleychat/parley/loadtest/wire"
)

// Counters are the driver's own counts, beside the ledger's, updated by
// every virtual user at once.
type Counters struct {
	// Connections is how many WebSocket connections are open now.
	Connections atomic.Int64
	// OutboxFull counts sends that found their connection's queue full:
	// the generator, not the server, could not keep up.
	OutboxFull atomic.Int64
	// AcksRead and LiveMessagesRead count the ack frames and the live
	// message frames (not history replayed after a reconnect) the users
	// read, every copy: what the servers' own counts of acks and
	// deliveries are held against (loadtest/truth).
	AcksRead, LiveMessagesRead atomic.Int64
	// FramesPaced counts the frames (joins and sends) the server refused
	// as rate_limited and the users wrote again after the wait it asked
	// for, and those waits.
	FramesPaced wire.PaceCounter
}
