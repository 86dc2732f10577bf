package ledger

import (
	"fmt"
	"testing"
	"time"
)

// near reports whether a histogram percentile is the given latency: HDR
// reports the top of the latency's bucket, at most 0.1% above it.
func near(got, want time.Duration) bool {
	return got >= want && float64(got-want) <= 0.001*float64(want)
}

func TestTimelineBucketsEventsByWhenTheyHappened(t *testing.T) {
	l := New(t0, time.Second)
	l.Expect("m1", "r", at(100*ms), []int32{0})
	l.Acked("m1", at(300*ms))
	l.Delivered(0, "r", "m1", 1, at(400*ms), false)

	l.Expect("m2", "r", at(1100*ms), []int32{0})
	l.Acked("m2", at(1200*ms))
	l.Delivered(0, "r", "m2", 2, at(2500*ms), false)

	l.Expect("m3", "r", at(1500*ms), []int32{0})
	l.Failed("m3", "rate_limited", at(1600*ms))

	l.Expect("m4", "r", at(1700*ms), []int32{0})
	l.Delivered(0, "r", "m4", 3, at(3200*ms), true)

	r := l.Finish(at(3500 * ms))
	if len(r.Timeline) != 4 {
		t.Fatalf("got %d points, want 4: %+v", len(r.Timeline), r.Timeline)
	}
	want := []Point{
		{Offset: 0, Sent: 1, Acked: 1, Delivered: 1, AckP50: 200 * ms, AckP99: 200 * ms, DeliveryP50: 300 * ms, DeliveryP99: 300 * ms},
		{Offset: time.Second, Sent: 3, Acked: 1, Errors: 1, AckP50: 100 * ms, AckP99: 100 * ms},
		{Offset: 2 * time.Second, Delivered: 1, DeliveryP50: 1400 * ms, DeliveryP99: 1400 * ms},
		{Offset: 3 * time.Second, Delivered: 1}, // replayed: counted, but no live latency
	}
	for i, got := range r.Timeline {
		w := want[i]
		if got.Offset != w.Offset || got.Sent != w.Sent || got.Acked != w.Acked || got.Errors != w.Errors || got.Delivered != w.Delivered {
			t.Errorf("point %d: got counts %+v, want %+v", i, got, w)
		}
		for _, c := range []struct {
			name      string
			got, want time.Duration
		}{
			{"ack p50", got.AckP50, w.AckP50}, {"ack p99", got.AckP99, w.AckP99},
			{"delivery p50", got.DeliveryP50, w.DeliveryP50}, {"delivery p99", got.DeliveryP99, w.DeliveryP99},
		} {
			if !near(c.got, c.want) {
				t.Errorf("point %d: got %s %v, want %v", i, c.name, c.got, c.want)
			}
		}
	}
}

func TestTimelinePercentilesAreThoseOfTheInterval(t *testing.T) {
	l := New(t0, time.Second)
	// In second s, 100 messages sent over its first half: 98 delivered in
	// 10ms, 2 in (s+1)*100ms, all within the second.
	n := 0
	for sec := range 4 {
		for i := range 100 {
			id := fmt.Sprint("m", n)
			n++
			intended := at(time.Duration(sec)*time.Second + time.Duration(i)*5*ms)
			latency := 10 * ms
			if i >= 98 {
				latency = time.Duration(sec+1) * 100 * ms
			}
			l.Expect(id, "r", intended, []int32{0})
			l.Delivered(0, "r", id, int64(n), intended.Add(latency), false)
		}
	}
	r := l.Finish(at(5 * time.Second))
	for sec, p := range r.Timeline[:4] {
		wantP99 := time.Duration(sec+1) * 100 * ms
		if p.Delivered != 100 || !near(p.DeliveryP50, 10*ms) || !near(p.DeliveryP99, wantP99) {
			t.Errorf("second %d: got %d delivered, p50 %v, p99 %v; want 100, 10ms, %v",
				sec, p.Delivered, p.DeliveryP50, p.DeliveryP99, wantP99)
		}
	}
}

func TestSnapshotReportsTotalsAndTheLastCompleteInterval(t *testing.T) {
	l := New(t0, time.Second)
	for i := range 10 { // second 0: acks in 50ms
		id := fmt.Sprint("a", i)
		l.Expect(id, "r", at(time.Duration(i)*10*ms), []int32{0, 1})
		l.Acked(id, at(time.Duration(i)*10*ms+50*ms))
		l.Delivered(0, "r", id, int64(i+1), at(time.Duration(i)*10*ms+60*ms), false)
	}
	for i := range 20 { // second 1: acks in 300ms, one refused
		id := fmt.Sprint("b", i)
		intended := at(time.Second + time.Duration(i)*10*ms)
		l.Expect(id, "r", intended, []int32{0, 1})
		if i == 19 {
			l.Failed(id, "rate_limited", intended.Add(ms))
			continue
		}
		l.Acked(id, intended.Add(300*ms))
		l.Delivered(1, "r", id, int64(i+11), intended.Add(400*ms), false)
	}
	l.ConnectError()

	p := l.Snapshot(at(2500 * ms))
	want := Progress{
		Interval: time.Second, Sent: 30, Acked: 29, AckErrors: 1, Delivered: 29, ConnectErrors: 1,
		Awaiting: 29*2 - 29, SendRate: 20, DeliveryRate: 19,
	}
	gotCounts := p
	gotCounts.AckP99, gotCounts.DeliveryP99 = 0, 0
	if gotCounts != want {
		t.Errorf("got  %+v\nwant %+v", gotCounts, want)
	}
	if !near(p.AckP99, 300*ms) || !near(p.DeliveryP99, 400*ms) {
		t.Errorf("got ack p99 %v delivery p99 %v, want 300ms and 400ms (second 1 only)", p.AckP99, p.DeliveryP99)
	}

	// A second look finds the same: snapshots change nothing.
	if again := l.Snapshot(at(2600 * ms)); again != p {
		t.Errorf("second snapshot %+v differs from first %+v", again, p)
	}
}

func TestSnapshotBeforeAnyCompleteInterval(t *testing.T) {
	l := New(t0, time.Second)
	l.Expect("m1", "r", at(0), []int32{0})
	p := l.Snapshot(at(500 * ms))
	if p.Sent != 1 || p.InFlight != 1 || p.SendRate != 0 || p.AckP99 != 0 {
		t.Errorf("got %+v, want 1 sent, 1 in flight, no rate or latency yet", p)
	}
	if p := l.Snapshot(t0.Add(-time.Second)); p.Sent != 1 {
		t.Errorf("got %+v before the start, want the totals", p)
	}
}

func TestTimelineKeepsUpWithoutSnapshots(t *testing.T) {
	l := New(t0, 100*ms)
	const seconds = 30
	for i := range seconds * 100 { // 100 messages per second for 30s
		id := fmt.Sprint("m", i)
		intended := at(time.Duration(i) * 10 * ms)
		l.Expect(id, "r", intended, []int32{0})
		l.Acked(id, intended.Add(20*ms))
		l.Delivered(0, "r", id, int64(i+1), intended.Add(30*ms), false)
		// Events publish the timeline themselves when nobody else does,
		// which keeps the shared set of pending intervals small.
		l.tl.mu.Lock()
		pending := len(l.tl.pending)
		l.tl.mu.Unlock()
		if pending > ringSize+1 {
			t.Fatalf("after %v, %d intervals pending", intended.Sub(t0), pending)
		}
	}
	r := l.Finish(at(seconds * time.Second))
	if len(r.Timeline) != seconds*10+1 {
		t.Fatalf("got %d points, want %d", len(r.Timeline), seconds*10+1)
	}
	for i, p := range r.Timeline[1 : seconds*10] {
		if p.Sent != 10 || p.Acked != 10 || p.Delivered != 10 || !near(p.AckP99, 20*ms) || !near(p.DeliveryP99, 30*ms) {
			t.Fatalf("point %d: got %+v, want 10 of each, p99s 20ms and 30ms", i+1, p)
		}
	}
}

func TestEventsForAPublishedIntervalStillCount(t *testing.T) {
	l := New(t0, time.Second)
	l.Expect("m1", "r", at(1100*ms), []int32{0})
	l.Expect("m2", "r", at(1200*ms), []int32{0})
	l.Acked("m1", at(1200*ms))
	l.Snapshot(at(5 * time.Second)) // publishes seconds 0 to 3
	// A straggler, observed in second 1 but recorded only now.
	l.Acked("m2", at(1900*ms))

	r := l.Finish(at(6 * time.Second))
	p := r.Timeline[1]
	if p.Acked != 2 {
		t.Errorf("got %d acks in second 1, want 2", p.Acked)
	}
	if !near(p.AckP99, 100*ms) {
		t.Errorf("got ack p99 %v in second 1, want 100ms (the straggler came after publication)", p.AckP99)
	}
	if r.Ack.Count != 2 || r.Ack.Max != 700*ms {
		t.Errorf("got %d acks, max %v, want 2 and 700ms in the totals", r.Ack.Count, r.Ack.Max)
	}
}

func TestEventsScheduledAheadLandInTheirInterval(t *testing.T) {
	l := New(t0, time.Second)
	// The schedule registers messages ten seconds ahead of their time, more
	// than a shard's ring holds.
	for i := range 10 {
		l.Expect(fmt.Sprint("m", i), "r", at(time.Duration(i)*time.Second), []int32{0})
	}
	r := l.Finish(at(12 * time.Second))
	for i, p := range r.Timeline[:10] {
		if p.Sent != 1 {
			t.Errorf("second %d: got %d sent, want 1", i, p.Sent)
		}
	}
}
