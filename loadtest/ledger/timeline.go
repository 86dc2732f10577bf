package ledger

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// The timeline answers "what happened during each interval": counts, and
// percentiles of the latencies of events that happened in it. Percentiles do
// not add up, so each interval needs its own histogram, merged across shards
// once every event of the interval is in. Keeping one per shard per interval
// for a whole run would cost gigabytes, so each shard keeps a small ring of
// recent intervals (sparse histograms, cheap when few buckets are used) and
// intervals are published, merged into a Point, shortly after they end.
//
// An interval is published once the next one is complete too (Snapshot), or
// when an event notices the timeline lagging further (catchUp). Events that
// arrive for an interval already published still add to its counts, but no
// longer to its percentiles. Since events carry the time they were observed,
// which is moments before they are recorded, that happens only under a
// scheduling stall of a whole interval.

// ringSize is how many recent intervals a shard keeps before handing the
// oldest over to the shared timeline: enough for events that straddle an
// interval boundary and for a progress reader that runs a little late.
const ringSize = 4

// countKind names the counters of a timeline interval.
type countKind uint8

const (
	countSent countKind = iota
	countAcked
	countErrors
	countDelivered
	countKinds
)

// Point is one interval of the timeline: what happened in it.
type Point struct {
	Offset                   time.Duration // the interval's start, since the run's start
	Sent                     int64         // messages whose intended send time fell in the interval
	Acked, Errors, Delivered int64         // acks, refusals and first deliveries (live and replayed) received in it
	// Latencies of the acks and live deliveries received in the interval.
	AckP50, AckP99, DeliveryP50, DeliveryP99 time.Duration
}

// window accumulates the events of one interval, in a shard's ring or in the
// timeline's pending set.
type window struct {
	k             int64 // the interval; -1 while the slot is free
	counts        [countKinds]int64
	ack, delivery *hdrhistogram.PackedHistogram // allocated on first use, kept across reuse
}

func newPacked() *hdrhistogram.PackedHistogram {
	return hdrhistogram.NewPacked(histLowest, histHighest, histDigits)
}

// add counts an event and, for acks and deliveries with d >= 0, its latency.
func (w *window) add(c countKind, d time.Duration) {
	w.counts[c]++
	if d < 0 {
		return
	}
	var h **hdrhistogram.PackedHistogram
	switch c {
	case countAcked:
		h = &w.ack
	case countDelivered:
		h = &w.delivery
	default:
		return
	}
	if *h == nil {
		*h = newPacked()
	}
	// d was clamped to the histogram's range by the caller.
	_ = (*h).RecordValue(int64(d / time.Microsecond))
}

// merge adds from's events to w.
func (w *window) merge(from *window) {
	for i, n := range from.counts {
		w.counts[i] += n
	}
	mergePacked(&w.ack, from.ack)
	mergePacked(&w.delivery, from.delivery)
}

func mergePacked(dst **hdrhistogram.PackedHistogram, src *hdrhistogram.PackedHistogram) {
	if src == nil || src.TotalCount() == 0 {
		return
	}
	if *dst == nil {
		*dst = newPacked()
	}
	(*dst).Merge(src)
}

// mergeInto adds w's latencies to dense histograms.
func (w *window) mergeInto(ack, delivery *hdrhistogram.Histogram) {
	if w.ack != nil {
		w.ack.MergeInto(ack)
	}
	if w.delivery != nil {
		w.delivery.MergeInto(delivery)
	}
}

// reset frees the slot, keeping the histograms' storage for the next interval.
func (w *window) reset() {
	w.k = -1
	w.counts = [countKinds]int64{}
	if w.ack != nil {
		w.ack.Reset()
	}
	if w.delivery != nil {
		w.delivery.Reset()
	}
}

// addCounts adds w's counts to p.
func (p *Point) addCounts(w *window) {
	p.Sent += w.counts[countSent]
	p.Acked += w.counts[countAcked]
	p.Errors += w.counts[countErrors]
	p.Delivered += w.counts[countDelivered]
}

// timeline is the shared half: published points, and intervals that shards
// have handed over before they could be published.
type timeline struct {
	mu      sync.Mutex
	points  []Point // one per published interval: len(points) intervals
	pending map[int64]*window
	free    []*window // reset windows, to reuse their histograms' storage
}

// pendingLocked returns the pending window of interval k, creating it.
func (t *timeline) pendingLocked(k int64) *window {
	if w := t.pending[k]; w != nil {
		return w
	}
	var w *window
	if n := len(t.free); n > 0 {
		w, t.free = t.free[n-1], t.free[:n-1]
	} else {
		w = &window{}
	}
	w.k = k
	t.pending[k] = w
	return w
}

// absorb takes over a shard's window (the caller holds the shard's lock) and
// frees it.
func (t *timeline) absorb(w *window) {
	t.mu.Lock()
	if w.k < int64(len(t.points)) {
		t.points[w.k].addCounts(w)
	} else {
		t.pendingLocked(w.k).merge(w)
	}
	t.mu.Unlock()
	w.reset()
}

// addDirect records an event its shard's ring had no room for: its interval
// is already published, or older than every interval in the ring.
func (t *timeline) addDirect(k int64, c countKind, d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if k < int64(len(t.points)) {
		// Too late for the interval's percentiles, not for its counts.
		var w window
		w.counts[c] = 1
		t.points[k].addCounts(&w)
		return
	}
	t.pendingLocked(k).add(c, d)
}

// publishLocked turns intervals [from, upto) into points.
func (t *timeline) publishLocked(from, upto int64, interval time.Duration) {
	for k := from; k < upto; k++ {
		p := Point{Offset: time.Duration(k) * interval}
		if w := t.pending[k]; w != nil {
			p.addCounts(w)
			p.AckP50, p.AckP99 = packedPercentiles(w.ack)
			p.DeliveryP50, p.DeliveryP99 = packedPercentiles(w.delivery)
			delete(t.pending, k)
			w.reset()
			t.free = append(t.free, w)
		}
		t.points = append(t.points, p)
	}
}

func packedPercentiles(h *hdrhistogram.PackedHistogram) (p50, p99 time.Duration) {
	if h == nil || h.TotalCount() == 0 {
		return 0, 0
	}
	return time.Duration(h.ValueAtPercentile(50)) * time.Microsecond,
		time.Duration(h.ValueAtPercentile(99)) * time.Microsecond
}

// tally counts an event of interval k in the shard's ring, or hands it to the
// timeline if the ring cannot take it. d < 0: no latency. Called with s.mu held.
func (l *Ledger) tally(s *shard, k int64, c countKind, d time.Duration) {
	if k > s.lastInt {
		s.lastInt = k
	}
	// done is read under the shard's lock: publish raises it before it takes
	// each shard's lock to collect the intervals it publishes, so an event
	// either lands in a slot that publish then collects or sees the new done.
	done := l.done.Load()
	w := &s.ring[k%ringSize]
	switch {
	case w.k == k:
	case k < done || w.k > k:
		l.tl.addDirect(k, c, d)
		return
	default: // the slot is free or holds an older interval
		if w.k >= 0 {
			l.tl.absorb(w)
		}
		w.k = k
	}
	w.add(c, d)
}

// publish makes every interval before upto final. The caller holds finMu.
func (l *Ledger) publish(upto int64) {
	from := l.done.Load()
	if upto <= from {
		return
	}
	l.done.Store(upto)
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for j := range s.ring {
			if w := &s.ring[j]; w.k >= 0 && w.k < upto {
				l.tl.absorb(w)
			}
		}
		s.mu.Unlock()
	}
	l.tl.mu.Lock()
	l.tl.publishLocked(from, upto, l.interval)
	l.tl.mu.Unlock()
}

// catchUp publishes the timeline from an event's goroutine when nobody has
// for a while (no progress reader calls Snapshot), so that rings do not spill
// every event into the shared pending set and it does not grow all run long.
// It gives way to a publisher already at work rather than wait.
func (l *Ledger) catchUp(k int64) {
	if k-l.done.Load() < ringSize-1 || !l.finMu.TryLock() {
		return
	}
	l.publish(k - 1)
	l.finMu.Unlock()
}
