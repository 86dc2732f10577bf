// Package ledger matches what the load generator sent with what the server
// answered and delivered, and turns it into counts and latencies.
//
// Every latency is measured from the message's intended send time, the moment
// the open-model schedule meant it to leave, not from when the generator got
// round to sending it. A server (or a generator) that stalls therefore shows its
// stall in the percentiles instead of hiding it: no coordinated omission.
//
// A Ledger is written to by thousands of connection goroutines at tens of
// thousands of events per second, so its state is split into shards, each with
// its own mutex, maps and histograms, and merged only when someone reads it
// (Snapshot, Finish).
package ledger

import (
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// shardCount spreads lock contention: with 64 shards two goroutines rarely
// want the same mutex even on a many-core machine. A power of two keeps the
// shard index a mask.
const shardCount = 64

// The histogram range, in microseconds: anything slower than an hour is
// recorded as an hour (and counted in Result.Clamped).
const (
	histLowest  = 1
	histHighest = int64(time.Hour / time.Microsecond)
	histDigits  = 3
)

// Ledger records the life of every message of a run. It is safe for
// concurrent use; the zero value is not usable, call New.
type Ledger struct {
	start    time.Time
	interval time.Duration
	seed     maphash.Seed

	// A message's state lives in the shard its client_id hashes to; what its
	// recipients saw (latencies, order) in the shard of each recipient. So the
	// burst of deliveries one message causes spreads over many locks.
	shards [shardCount]shard

	connectErrors atomic.Int64

	// done is the first timeline interval not yet published: intervals before
	// it are final. Shards read it under their own lock (see tally).
	done atomic.Int64
	// finMu serialises whoever publishes timeline intervals (Snapshot, Finish,
	// or an event that notices the timeline lagging) and guards the scratch
	// histograms below.
	finMu                  sync.Mutex
	scratchAck, scratchDel *hdrhistogram.Histogram
	tl                     timeline

	// onAck and onDelivery, when set, see every ack latency and live
	// delivery latency as they are recorded (outside the shard locks).
	onAck, onDelivery func(time.Duration)
}

// state is where a message stands with the server.
type state uint8

const (
	pending state = iota // sent, no answer yet
	acked                // stored by the server: every recipient must get it
	failed               // refused, and never acked since
)

// message is what the ledger remembers of one message until every recipient
// has it (or until Finish).
type message struct {
	room       string
	recipients []int32       // sorted and distinct, owned by the ledger
	intended   time.Duration // since the ledger's start
	got        []uint64      // bit i: recipients[i] got it; points into inline when it fits
	inline     [1]uint64
	delivered  int32
	state      state
}

// shard is one slice of the ledger's state, under one mutex.
type shard struct {
	mu sync.Mutex

	// The messages whose client_id hashes here, and their events.
	live map[string]*message
	// retired holds the client_id hashes of messages that were acked and
	// delivered to every recipient. Remembering a hash instead of the message
	// keeps a long run's memory flat while still telling a late duplicate
	// from foreign traffic (a 64-bit collision is too rare to matter).
	retired                                    map[uint64]struct{}
	sent, acked, errors, inFlight, awaiting    int64
	retiredExpected                            int64
	duplicates, foreign, unexpected, misrouted int64
	errorCodes                                 map[string]int64
	firstSend, lastSend                        time.Duration // intended, since the start
	ack                                        latencies

	// The deliveries to the recipients that map here.
	lastSeq                    map[orderKey]int64 // the highest seq each recipient saw in each room
	delivered, replayed        int64
	reordered                  int64
	delivery, replayedDelivery latencies

	clamped int64
	ring    [ringSize]window // the timeline's most recent intervals
	lastInt int64            // the latest interval any event of this shard fell in

	_ [64]byte // keeps neighbouring shards' hot fields off each other's cache lines
}

type orderKey struct {
	recipient int32
	room      string
}

// latencies accumulates one kind of latency: an HDR histogram for the
// percentiles and exact extremes and sum, so that min, max and mean are not
// rounded to a histogram bucket.
type latencies struct {
	hist     *hdrhistogram.Histogram // allocated on first use: it is ~190 KB
	count    int64
	min, max time.Duration
	sum      float64 // nanoseconds; a float so that hours of samples cannot overflow
}

// New returns a Ledger whose clock starts at start and whose timeline has one
// point per interval (one second if interval is not positive).
func New(start time.Time, interval time.Duration) *Ledger {
	if interval <= 0 {
		interval = time.Second
	}
	l := &Ledger{start: start, interval: interval, seed: maphash.MakeSeed()}
	for i := range l.shards {
		s := &l.shards[i]
		s.live = make(map[string]*message)
		s.retired = make(map[uint64]struct{})
		s.errorCodes = make(map[string]int64)
		s.lastSeq = make(map[orderKey]int64)
		for j := range s.ring {
			s.ring[j].k = -1
		}
	}
	l.tl.pending = make(map[int64]*window)
	return l
}

// messageShard returns the shard of a client_id, and the id's hash.
func (l *Ledger) messageShard(clientID string) (*shard, uint64) {
	h := maphash.String(l.seed, clientID)
	return &l.shards[h%shardCount], h
}

func (l *Ledger) recipientShard(recipient int32) *shard {
	return &l.shards[uint32(recipient)%shardCount]
}

// intervalOf returns the timeline interval an instant falls in; instants
// before the start count in the first.
func (l *Ledger) intervalOf(at time.Time) int64 {
	return l.intervalAt(at.Sub(l.start))
}

// intervalAt is intervalOf for an offset from the start.
func (l *Ledger) intervalAt(offset time.Duration) int64 {
	if offset < 0 {
		return 0
	}
	return int64(offset / l.interval)
}

// Expect registers a message before it is sent: its client_id (unique in the
// run), its room, the time the schedule meant it to be sent, and the users who
// must receive it: every member of the room, the sender included, as small
// integer user indexes. The ledger keeps its own copy of recipients. A second
// Expect for a client_id already known is ignored.
func (l *Ledger) Expect(clientID, room string, intended time.Time, recipients []int32) {
	m := &message{room: room, intended: intended.Sub(l.start), state: pending}
	m.recipients = slices.Clone(recipients)
	if !slices.IsSorted(m.recipients) {
		slices.Sort(m.recipients)
	}
	// A user listed twice would wait forever for a second copy and be reported lost.
	m.recipients = slices.Compact(m.recipients)
	if words := (len(m.recipients) + 63) / 64; words <= len(m.inline) {
		m.got = m.inline[:]
	} else {
		m.got = make([]uint64, words)
	}
	k := l.intervalAt(m.intended)

	s, h := l.messageShard(clientID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.live[clientID]; ok {
		return
	}
	if _, ok := s.retired[h]; ok {
		return
	}
	s.live[clientID] = m
	if s.sent == 0 {
		s.firstSend, s.lastSend = m.intended, m.intended
	}
	s.firstSend, s.lastSend = min(s.firstSend, m.intended), max(s.lastSend, m.intended)
	s.sent++
	s.inFlight++
	s.awaiting += int64(len(m.recipients))
	// No catchUp here: an intended time may lie ahead of the clock, and the
	// timeline must not publish intervals that have not happened yet.
	l.tally(s, k, countSent, -1)
}

// Observe makes the ledger pass every ack latency and every live delivery
// latency to the given functions as well, for live metrics. Call it before
// the ledger is used; the functions must be safe for concurrent use.
func (l *Ledger) Observe(ack, delivery func(time.Duration)) {
	l.onAck, l.onDelivery = ack, delivery
}

// Acked records the server's ack of a message. Ack latency is at minus the
// intended send time. Only the first ack counts: a resend's re-ack is ignored,
// as is an ack for a client_id never passed to Expect.
func (l *Ledger) Acked(clientID string, at time.Time) {
	off := at.Sub(l.start)
	k := l.intervalAt(off)
	s, h := l.messageShard(clientID)
	s.mu.Lock()
	m := s.live[clientID]
	if m == nil || m.state == acked {
		s.mu.Unlock()
		return
	}
	if m.state == failed {
		// A resend succeeded after a refusal: the message exists after all,
		// so its deliveries are expected again.
		s.awaiting += int64(len(m.recipients)) - int64(m.delivered)
	} else {
		s.inFlight--
	}
	m.state = acked
	s.acked++
	d := off - m.intended
	d = s.record(&s.ack, d)
	l.tally(s, k, countAcked, d)
	if int(m.delivered) == len(m.recipients) {
		s.retire(clientID, h, m)
	}
	s.mu.Unlock()
	if l.onAck != nil {
		l.onAck(d)
	}
	l.catchUp(k)
}

// Failed records that the server refused or failed a send (an error frame,
// an HTTP error), counted by code. Unless the message is acked later, no
// deliveries are expected for it. Every call counts, so a message refused
// twice is two errors; an ack that came first stands.
func (l *Ledger) Failed(clientID, code string, at time.Time) {
	k := l.intervalOf(at)
	s, _ := l.messageShard(clientID)
	s.mu.Lock()
	s.errors++
	s.errorCodes[code]++
	l.tally(s, k, countErrors, -1)
	if m := s.live[clientID]; m != nil && m.state == pending {
		m.state = failed
		s.inFlight--
		s.awaiting -= int64(len(m.recipients)) - int64(m.delivered)
	}
	s.mu.Unlock()
	l.catchUp(k)
}

// Delivered records that recipient received the message clientID, with the
// room's seq, at the given time. replayed marks a message that came as
// history after a reconnect (a join with since): it counts as delivered, but
// its latency goes to a separate histogram, since it says how long the
// recipient was away rather than how fast the server fans out.
//
// A second copy to the same recipient is a duplicate; a seq lower than one
// this recipient already saw in this room is reordered. Once an acked message
// has reached every recipient the ledger keeps only a hash of its client_id,
// so any later copy of it, to anyone, is a duplicate. A copy in another room
// than the message's is misrouted; one to a user not among its recipients is
// unexpected. A client_id the ledger never expected (other traffic in the
// room, messages from before the run) is foreign and otherwise ignored.
func (l *Ledger) Delivered(recipient int32, room, clientID string, seq int64, at time.Time, replayed bool) {
	off := at.Sub(l.start)
	k := l.intervalAt(off)
	s, h := l.messageShard(clientID)
	s.mu.Lock()
	m := s.live[clientID]
	if m == nil {
		if _, ok := s.retired[h]; ok {
			s.duplicates++ // everyone already had it
		} else {
			s.foreign++
		}
		s.mu.Unlock()
		return
	}
	if m.room != room {
		s.misrouted++
		s.mu.Unlock()
		return
	}
	i, ok := slices.BinarySearch(m.recipients, recipient)
	if !ok {
		// A user who joined the room after the send, or a fan-out bug.
		s.unexpected++
		s.mu.Unlock()
		return
	}
	word, bit := i/64, uint64(1)<<(i%64)
	if m.got[word]&bit != 0 {
		s.duplicates++
		s.mu.Unlock()
		return
	}
	m.got[word] |= bit
	m.delivered++
	if m.state != failed {
		s.awaiting--
	}
	d := off - m.intended
	if m.state == acked && int(m.delivered) == len(m.recipients) {
		s.retire(clientID, h, m)
	}
	s.mu.Unlock()

	r := l.recipientShard(recipient)
	key := orderKey{recipient: recipient, room: room}
	r.mu.Lock()
	if last, seen := r.lastSeq[key]; seen && seq < last {
		r.reordered++
	} else {
		r.lastSeq[key] = seq
	}
	r.delivered++
	if replayed {
		r.replayed++
		r.record(&r.replayedDelivery, d)
		// Replay latency is how long the recipient was away: it stays out of
		// the timeline's delivery percentiles.
		l.tally(r, k, countDelivered, -1)
	} else {
		d = r.record(&r.delivery, d)
		l.tally(r, k, countDelivered, d)
	}
	r.mu.Unlock()
	if !replayed && l.onDelivery != nil {
		l.onDelivery(d)
	}
	l.catchUp(k)
}

// ConnectError records a failed connection attempt.
func (l *Ledger) ConnectError() {
	l.connectErrors.Add(1)
}

// retire forgets a message that every recipient has and the server acked,
// keeping only its hash to recognise duplicates. Called with s.mu held.
func (s *shard) retire(clientID string, h uint64, m *message) {
	delete(s.live, clientID)
	s.retired[h] = struct{}{}
	s.retiredExpected += int64(len(m.recipients))
}

// record clamps d to the histogram's range, counting the clamp, and adds it
// to r. It returns the value recorded. Called with s.mu held.
func (s *shard) record(r *latencies, d time.Duration) time.Duration {
	if d < 0 || d > time.Hour {
		// Negative: sent before its time (a clock or schedule bug). Over an
		// hour: beyond the histogram. Both are kept visible as a count.
		s.clamped++
		d = min(max(d, 0), time.Hour)
	}
	if r.hist == nil {
		r.hist = newHistogram()
	}
	// The value is within the histogram's range, so recording cannot fail.
	_ = r.hist.RecordValue(int64(d / time.Microsecond))
	if r.count == 0 || d < r.min {
		r.min = d
	}
	if d > r.max {
		r.max = d
	}
	r.count++
	r.sum += float64(d)
	return d
}

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowest, histHighest, histDigits)
}
