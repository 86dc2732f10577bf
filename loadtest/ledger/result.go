package ledger

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latency summarises one kind of latency. Count, Min, Mean and Max are
// exact; percentiles come from an HDR histogram (three significant figures,
// bounded by Min and Max).
type Latency struct {
	Count                               int64
	Min, Mean, P50, P90, P99, P999, Max time.Duration
}

// Result is the outcome of a run, from Finish.
//
// Messages: Sent = Acked + Failed + Unanswered. Deliveries, counted per
// (message, recipient) pair: Expected = Delivered + Lost + Unconfirmed.
type Result struct {
	Start    time.Time
	Interval time.Duration // the timeline's resolution
	Duration time.Duration // from Start to Finish
	// SendSpan is the time from the first to the last intended send time.
	SendSpan time.Duration

	Sent       int64            // messages registered with Expect
	Acked      int64            // messages the server acked
	Failed     int64            // messages the server refused and never acked
	Unanswered int64            // messages neither acked nor refused by Finish
	AckErrors  map[string]int64 // refusals by error code; every refusal counts, so a retried message can count twice

	Expected    int64 // pairs whose delivery was expected: recipients of acked and unanswered messages
	Delivered   int64 // expected pairs delivered, live or replayed
	Replayed    int64 // of Delivered, those that arrived as history after a reconnect
	Lost        int64 // pairs of acked messages never delivered: the server broke its promise
	Unconfirmed int64 // pairs of unanswered messages never delivered: maybe never stored
	Duplicates  int64 // deliveries of a message the recipient already had
	Reordered   int64 // deliveries with a seq lower than one the recipient already saw in the room
	Foreign     int64 // deliveries of messages this run did not send
	// Unexpected counts deliveries to a user who was not among the message's
	// recipients (membership changed, or a fan-out bug), and deliveries of a
	// message the server refused and never acked.
	Unexpected    int64
	Misrouted     int64 // deliveries in a room other than the message's
	ConnectErrors int64
	Clamped       int64 // latencies outside 0..1h, recorded as the nearest bound

	Ack, Delivery, ReplayedDelivery Latency
	// AckHist and DeliveryHist hold every ack and live-delivery latency, in
	// microseconds (1µs to 1h, three significant figures). Never nil.
	AckHist, DeliveryHist *hdrhistogram.Histogram

	Timeline     []Point  // one per interval from Start to Finish
	LostExamples []string // up to 10 "client_id→recipient", the first in sort order
}

// Values returns the figures thresholds are written against, by name.
// Latencies are in seconds. ack_error_rate is ack_errors/(acked+ack_errors).
// send_rate is messages per second over the send span: (sent-1)/span, exact
// for evenly spaced sends; it follows the intended send times, so it shows the
// load offered, while how late the generator really was is its scheduling lag.
func (r Result) Values() map[string]float64 {
	var errs int64
	for _, n := range r.AckErrors {
		errs += n
	}
	v := map[string]float64{
		"sent":           float64(r.Sent),
		"acked":          float64(r.Acked),
		"failed":         float64(r.Failed),
		"unanswered":     float64(r.Unanswered),
		"ack_errors":     float64(errs),
		"ack_error_rate": ratio(errs, r.Acked+errs),
		"expected":       float64(r.Expected),
		"delivered":      float64(r.Delivered),
		"replayed":       float64(r.Replayed),
		"lost":           float64(r.Lost),
		"loss_rate":      ratio(r.Lost, r.Expected),
		"unconfirmed":    float64(r.Unconfirmed),
		"duplicates":     float64(r.Duplicates),
		"reordered":      float64(r.Reordered),
		"foreign":        float64(r.Foreign),
		"unexpected":     float64(r.Unexpected),
		"misrouted":      float64(r.Misrouted),
		"connect_errors": float64(r.ConnectErrors),
		"send_rate":      0,
	}
	if r.Sent > 1 && r.SendSpan > 0 {
		v["send_rate"] = float64(r.Sent-1) / r.SendSpan.Seconds()
	}
	for prefix, l := range map[string]Latency{"ack": r.Ack, "delivery": r.Delivery, "replayed": r.ReplayedDelivery} {
		v[prefix+"_p50"] = l.P50.Seconds()
		v[prefix+"_p90"] = l.P90.Seconds()
		v[prefix+"_p99"] = l.P99.Seconds()
		v[prefix+"_p999"] = l.P999.Seconds()
		v[prefix+"_max"] = l.Max.Seconds()
		v[prefix+"_mean"] = l.Mean.Seconds()
	}
	return v
}

func ratio(n, d int64) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}

// Progress is the state of a run so far, for a live progress line.
type Progress struct {
	Interval time.Duration

	Sent, Acked, AckErrors, Delivered, Replayed   int64
	Duplicates, Reordered, Foreign, ConnectErrors int64
	// InFlight counts messages sent and neither acked nor refused yet.
	InFlight int64
	// Awaiting counts deliveries expected and not seen yet. Some are on their
	// way; which ones are lost is only known after the drain.
	Awaiting int64

	// Over the last complete interval: messages sent and first deliveries per
	// second, and the 99th percentile of the acks and live deliveries received.
	SendRate, DeliveryRate float64
	AckP99, DeliveryP99    time.Duration
}

// Snapshot returns totals so far and the rates and p99s of the last complete
// interval. It is cheap enough to call every second, and calling it keeps the
// timeline published promptly.
func (l *Ledger) Snapshot(now time.Time) Progress {
	last := l.intervalOf(now) - 1
	if now.Before(l.start) {
		last = -1
	}
	l.finMu.Lock()
	defer l.finMu.Unlock()
	// The last complete interval stays open for stragglers: publish only the
	// ones before it, and peek at it.
	l.publish(last)

	p := Progress{Interval: l.interval, ConnectErrors: l.connectErrors.Load()}
	if l.scratchAck == nil {
		l.scratchAck, l.scratchDel = newHistogram(), newHistogram()
	}
	l.scratchAck.Reset()
	l.scratchDel.Reset()
	var lastCounts Point
	published := false
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		p.Sent += s.sent
		p.Acked += s.acked
		p.AckErrors += s.errors
		p.Delivered += s.delivered
		p.Replayed += s.replayed
		p.Duplicates += s.duplicates
		p.Foreign += s.foreign
		p.Reordered += s.reordered
		p.InFlight += s.inFlight
		p.Awaiting += s.awaiting
		if last >= 0 {
			if w := &s.ring[last%ringSize]; w.k == last {
				lastCounts.addCounts(w)
				w.mergeInto(l.scratchAck, l.scratchDel)
			}
		}
		s.mu.Unlock()
	}
	if last < 0 {
		return p
	}
	l.tl.mu.Lock()
	if last < int64(len(l.tl.points)) {
		// An event's catchUp got there first: the interval is already a point.
		lastCounts, published = l.tl.points[last], true
	} else if w := l.tl.pending[last]; w != nil {
		lastCounts.addCounts(w)
		w.mergeInto(l.scratchAck, l.scratchDel)
	}
	l.tl.mu.Unlock()
	if !published {
		lastCounts.AckP99 = micros(l.scratchAck.ValueAtQuantile(99))
		lastCounts.DeliveryP99 = micros(l.scratchDel.ValueAtQuantile(99))
	}
	secs := l.interval.Seconds()
	p.SendRate = float64(lastCounts.Sent) / secs
	p.DeliveryRate = float64(lastCounts.Delivered) / secs
	p.AckP99, p.DeliveryP99 = lastCounts.AckP99, lastCounts.DeliveryP99
	return p
}

func micros(v int64) time.Duration { return time.Duration(v) * time.Microsecond }

// Finish returns the outcome of the run. Call it after the drain, once no
// more events are coming: whatever an acked message's recipients have not
// received by then is lost. now should not precede the last event recorded;
// the timeline runs to whichever is later.
func (l *Ledger) Finish(now time.Time) Result {
	l.finMu.Lock()
	defer l.finMu.Unlock()

	upto := l.intervalOf(now) + 1
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		upto = max(upto, s.lastInt+1)
		s.mu.Unlock()
	}
	l.publish(upto)

	r := Result{
		Start:         l.start,
		Interval:      l.interval,
		Duration:      now.Sub(l.start),
		AckErrors:     make(map[string]int64),
		ConnectErrors: l.connectErrors.Load(),
	}
	var ack, delivery, replayed latencies
	ack.hist, delivery.hist, replayed.hist = newHistogram(), newHistogram(), newHistogram()
	var lost lostExamples
	var firstSend, lastSend time.Duration
	var sending bool
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		r.Sent += s.sent
		r.Acked += s.acked
		r.Expected += s.retiredExpected
		r.Delivered += s.delivered
		r.Replayed += s.replayed
		r.Duplicates += s.duplicates
		r.Foreign += s.foreign
		r.Unexpected += s.unexpected
		r.Misrouted += s.misrouted
		r.Reordered += s.reordered
		r.Clamped += s.clamped
		for code, n := range s.errorCodes {
			r.AckErrors[code] += n
		}
		ack.merge(&s.ack)
		delivery.merge(&s.delivery)
		replayed.merge(&s.replayedDelivery)
		for id, m := range s.live {
			n, got := int64(len(m.recipients)), int64(m.delivered)
			switch m.state {
			case acked:
				r.Expected += n
				r.Lost += n - got
				lost.add(id, m)
			case pending:
				r.Unanswered++
				r.Expected += n
				r.Unconfirmed += n - got
			case failed:
				// The server said no but delivered anyway: not what anyone expected.
				r.Failed++
				r.Delivered -= got
				r.Unexpected += got
			}
		}
		if s.sent > 0 {
			if !sending {
				firstSend, lastSend, sending = s.firstSend, s.lastSend, true
			}
			firstSend, lastSend = min(firstSend, s.firstSend), max(lastSend, s.lastSend)
		}
		s.mu.Unlock()
	}
	l.tl.mu.Lock()
	r.Timeline = slices.Clone(l.tl.points)
	l.tl.mu.Unlock()

	r.SendSpan = lastSend - firstSend
	r.Ack, r.Delivery, r.ReplayedDelivery = ack.summary(), delivery.summary(), replayed.summary()
	r.AckHist, r.DeliveryHist = ack.hist, delivery.hist
	r.LostExamples = lost.strings()
	return r
}

// merge adds from's samples to r, whose histogram is allocated.
func (r *latencies) merge(from *latencies) {
	if from.count == 0 {
		return
	}
	r.hist.Merge(from.hist)
	if r.count == 0 || from.min < r.min {
		r.min = from.min
	}
	r.max = max(r.max, from.max)
	r.count += from.count
	r.sum += from.sum
}

func (r *latencies) summary() Latency {
	if r.count == 0 {
		return Latency{}
	}
	// HDR reports a bucket's upper bound; bounding by the exact extremes keeps
	// the summary consistent (a p99.9 above the max would puzzle a reader).
	q := func(percentile float64) time.Duration {
		return min(max(micros(r.hist.ValueAtQuantile(percentile)), r.min), r.max)
	}
	return Latency{
		Count: r.count,
		Min:   r.min,
		Mean:  time.Duration(r.sum / float64(r.count)),
		P50:   q(50),
		P90:   q(90),
		P99:   q(99),
		P999:  q(99.9),
		Max:   r.max,
	}
}

// lostExamples keeps the first few lost pairs in sort order, so that the
// examples a report shows do not change with map iteration order.
type lostExamples []lostPair

type lostPair struct {
	clientID  string
	recipient int32
}

const maxLostExamples = 10

func (e *lostExamples) add(clientID string, m *message) {
	for i, r := range m.recipients {
		if m.got[i/64]&(1<<(i%64)) != 0 {
			continue
		}
		p := lostPair{clientID, r}
		if len(*e) == maxLostExamples && comparePairs(p, (*e)[len(*e)-1]) >= 0 {
			return // every later recipient of this message sorts after p
		}
		i, _ := slices.BinarySearchFunc(*e, p, comparePairs)
		*e = slices.Insert(*e, i, p)
		if len(*e) > maxLostExamples {
			*e = (*e)[:maxLostExamples]
		}
	}
}

func comparePairs(a, b lostPair) int {
	return cmp.Or(cmp.Compare(a.clientID, b.clientID), cmp.Compare(a.recipient, b.recipient))
}

func (e lostExamples) strings() []string {
	out := make([]string, len(e))
	for i, p := range e {
		out[i] = fmt.Sprintf("%s→%d", p.clientID, p.recipient)
	}
	return out
}
