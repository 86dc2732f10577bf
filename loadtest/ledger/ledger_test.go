package ledger

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// at returns the instant d after the ledger's start.
func at(d time.Duration) time.Time { return t0.Add(d) }

const ms = time.Millisecond

// tally is the part of a Result the detection tests compare.
type tally struct {
	Sent, Acked, Failed, Unanswered                       int64
	Expected, Delivered, Replayed, Lost, Unconfirmed      int64
	Duplicates, Reordered, Foreign, Unexpected, Misrouted int64
	ConnectErrors                                         int64
}

func tallyOf(r Result) tally {
	return tally{
		Sent: r.Sent, Acked: r.Acked, Failed: r.Failed, Unanswered: r.Unanswered,
		Expected: r.Expected, Delivered: r.Delivered, Replayed: r.Replayed, Lost: r.Lost, Unconfirmed: r.Unconfirmed,
		Duplicates: r.Duplicates, Reordered: r.Reordered, Foreign: r.Foreign, Unexpected: r.Unexpected, Misrouted: r.Misrouted,
		ConnectErrors: r.ConnectErrors,
	}
}

var trio = []int32{0, 1, 2}

func TestLedgerDetection(t *testing.T) {
	tests := []struct {
		name     string
		run      func(l *Ledger)
		want     tally
		wantLost []string
	}{
		{
			name: "an acked message delivered to every recipient is complete",
			run: func(l *Ledger) {
				l.Expect("m1", "r", at(0), trio)
				l.Acked("m1", at(5*ms))
				for _, u := range trio {
					l.Delivered(u, "r", "m1", 1, at(10*ms), false)
				}
			},
			want: tally{Sent: 1, Acked: 1, Expected: 3, Delivered: 3},
		},
		{
			name: "an acked message a recipient never gets is lost",
			run: func(l *Ledger) {
				l.Expect("m1", "r", at(0), trio)
				l.Acked("m1", at(5*ms))
				l.Delivered(0, "r", "m1", 1, at(10*ms), false)
				l.Delivered(2, "r", "m1", 1, at(10*ms), false)
			},
			want:     tally{Sent: 1, Acked: 1, Expected: 3, Delivered: 2, Lost: 1},
			wantLost: []string{"m1→1"},
		},
		{
			name: "a second copy to the same recipient is a duplicate",
			run: func(l *Ledger) {
				l.Expect("m1", "r", at(0), trio)
				l.Acked("m1", at(5*ms))
				l.Delivered(0, "r", "m1", 1, at(10*ms), false)
				l.Delivered(0, "r", "m1", 1, at(11*ms), false)
				l.Delivered(1, "r", "m1", 1, at(10*ms), false)
				l.Delivered(2, "r", "m1", 1, at(10*ms), false)
			},
			want: tally{Sent: 1, Acked: 1, Expected: 3, Delivered: 3, Duplicates: 1},
		},
		{
			name: "a copy after everyone had it is a duplicate, not foreign",
			run: func(l *Ledger) {
				l.Expect("m1", "r", at(0), trio)
				for _, u := range trio {
					l.Delivered(u, "r", "m1", 1, at(10*ms), false)
				}
				l.Acked("m1", at(12*ms)) // the ack may come after the deliveries
				l.Delivered(1, "r", "m1", 1, at(20*ms), true)
			},
			want: tally{Sent: 1, Acked: 1, Expected: 3, Delivered: 3, Duplicates: 1},
		},
		{
			name: "a lower seq than one already seen in the room is reordered",
			run: func(l *Ledger) {
				l.Expect("m1", "r", at(0), []int32{0})
				l.Expect("m2", "r", at(1*ms), []int32{0})
				l.Acked("m1", at(5*ms))
				l.Acked("m2", at(5*ms))
				l.Delivered(0, "r", "m2", 2, at(10*ms), false)
				l.Delivered(0, "r", "m1", 1, at(11*ms), false)
			},
			want: tally{Sent: 2, Acked: 2, Expected: 2, Delivered: 2, Reordered: 1},
		},
		{
			name: "order is per room and per recipient",
			run: func(l *Ledger) {
				l.Expect("a5", "a", at(0), []int32{0, 1})
				l.Expect("b1", "b", at(0), []int32{0})
				l.Expect("a1", "a", at(0), []int32{1})
				l.Delivered(0, "a", "a5", 5, at(10*ms), false)
				l.Delivered(0, "b", "b1", 1, at(11*ms), false)
				l.Delivered(1, "a", "a1", 1, at(11*ms), false)
				l.Delivered(1, "a", "a5", 5, at(12*ms), false)
			},
			want: tally{Sent: 3, Unanswered: 3, Expected: 4, Delivered: 4},
		},
		{
			name: "a duplicate is not also reordered",
			run: func(l *Ledger) {
				l.Expect("m1", "r", at(0), []int32{0, 1})
				l.Expect("m2", "r", at(0), []int32{0, 1})
				l.Delivered(0, "r", "m1", 1, at(10*ms), false)
				l.Delivered(0, "r", "m2", 2, at(10*ms), false)
				l.Delivered(0, "r", "m1", 1, at(10*ms), false)
			},
			want: tally{Sent: 2, Unanswered: 2, Expected: 4, Delivered: 2, Unconfirmed: 2, Duplicates: 1},
		},
		{
			name: "a message this run did not send is foreign",
			run: func(l *Ledger) {
				l.Delivered(0, "r", "someone-else", 7, at(10*ms), false)
			},
			want: tally{Foreign: 1},
		},
		{
			name: "a delivery in another room is misrouted",
			run: func(l *Ledger) {
				l.Expect("m1", "r", at(0), []int32{0})
				l.Acked("m1", at(5*ms))
				l.Delivered(0, "elsewhere", "m1", 1, at(10*ms), false)
			},
			want:     tally{Sent: 1, Acked: 1, Expected: 1, Lost: 1, Misrouted: 1},
			wantLost: []string{"m1→0"},
		},
		{
			name: "a delivery to a non-recipient is unexpected",
			run: func(l *Ledger) {
				l.Expect("m1", "r", at(0), []int32{0})
				l.Acked("m1", at(5*ms))
				l.Delivered(9, "r", "m1", 1, at(10*ms), false)
				l.Delivered(0, "r", "m1", 1, at(10*ms), false)
			},
			want: tally{Sent: 1, Acked: 1, Expected: 1, Delivered: 1, Unexpected: 1},
		},
		{
			name: "a refused message expects no deliveries",
			run: func(l *Ledger) {
				l.Expect("m1", "r", at(0), trio)
				l.Failed("m1", "rate_limited", at(5*ms))
			},
			want: tally{Sent: 1, Failed: 1},
		},
		{
			name: "a refused message delivered anyway is unexpected",
			run: func(l *Ledger) {
				l.Expect("m1", "r", at(0), trio)
				l.Delivered(0, "r", "m1", 1, at(3*ms), false) // before the refusal
				l.Failed("m1", "internal", at(5*ms))
				l.Delivered(1, "r", "m1", 1, at(6*ms), false) // after it
			},
			want: tally{Sent: 1, Failed: 1, Unexpected: 2},
		},
		{
			name: "a message acked after a refusal expects its deliveries again",
			run: func(l *Ledger) {
				l.Expect("m1", "r", at(0), trio)
				l.Failed("m1", "unavailable", at(5*ms))
				l.Acked("m1", at(50*ms))
				l.Delivered(0, "r", "m1", 1, at(60*ms), false)
			},
			want:     tally{Sent: 1, Acked: 1, Expected: 3, Delivered: 1, Lost: 2},
			wantLost: []string{"m1→1", "m1→2"},
		},
		{
			name: "a message never answered is unanswered, and its missing deliveries unconfirmed, not lost",
			run: func(l *Ledger) {
				l.Expect("m1", "r", at(0), trio)
				l.Delivered(0, "r", "m1", 1, at(10*ms), false)
			},
			want: tally{Sent: 1, Unanswered: 1, Expected: 3, Delivered: 1, Unconfirmed: 2},
		},
		{
			name: "a re-ack is not counted twice",
			run: func(l *Ledger) {
				l.Expect("m1", "r", at(0), []int32{0})
				l.Acked("m1", at(5*ms))
				l.Acked("m1", at(900*ms))
				l.Delivered(0, "r", "m1", 1, at(10*ms), false)
				l.Acked("m1", at(950*ms)) // after it retired
			},
			want: tally{Sent: 1, Acked: 1, Expected: 1, Delivered: 1},
		},
		{
			name: "a replayed delivery counts as delivered and replayed",
			run: func(l *Ledger) {
				l.Expect("m1", "r", at(0), []int32{0, 1})
				l.Acked("m1", at(5*ms))
				l.Delivered(0, "r", "m1", 1, at(10*ms), false)
				l.Delivered(1, "r", "m1", 1, at(3*time.Second), true)
			},
			want: tally{Sent: 1, Acked: 1, Expected: 2, Delivered: 2, Replayed: 1},
		},
		{
			name: "a second Expect for a client_id is ignored",
			run: func(l *Ledger) {
				l.Expect("m1", "r", at(0), []int32{0})
				l.Expect("m1", "r", at(1*ms), []int32{0, 1})
			},
			want: tally{Sent: 1, Unanswered: 1, Expected: 1, Unconfirmed: 1},
		},
		{
			name: "unsorted recipients listed twice are each expected once",
			run: func(l *Ledger) {
				l.Expect("m1", "r", at(0), []int32{2, 0, 2, 1})
				l.Acked("m1", at(5*ms))
				for _, u := range []int32{1, 2, 0} {
					l.Delivered(u, "r", "m1", 1, at(10*ms), false)
				}
			},
			want: tally{Sent: 1, Acked: 1, Expected: 3, Delivered: 3},
		},
		{
			name: "connection failures are counted",
			run: func(l *Ledger) {
				l.ConnectError()
				l.ConnectError()
			},
			want: tally{ConnectErrors: 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(t0, time.Second)
			tt.run(l)
			r := l.Finish(at(10 * time.Second))
			if got := tallyOf(r); got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			if !slices.Equal(r.LostExamples, tt.wantLost) {
				t.Errorf("got lost examples %q, want %q", r.LostExamples, tt.wantLost)
			}
			if r.Sent != r.Acked+r.Failed+r.Unanswered {
				t.Errorf("sent %d != acked %d + failed %d + unanswered %d", r.Sent, r.Acked, r.Failed, r.Unanswered)
			}
			if r.Expected != r.Delivered+r.Lost+r.Unconfirmed {
				t.Errorf("expected %d != delivered %d + lost %d + unconfirmed %d", r.Expected, r.Delivered, r.Lost, r.Unconfirmed)
			}
		})
	}
}

func TestFailedCountsByCode(t *testing.T) {
	l := New(t0, time.Second)
	l.Expect("m1", "r", at(0), trio)
	l.Expect("m2", "r", at(0), trio)
	l.Failed("m1", "rate_limited", at(1*ms))
	l.Failed("m1", "rate_limited", at(2*ms)) // a retry refused again
	l.Failed("m2", "internal", at(3*ms))
	l.Failed("never-expected", "bad_request", at(4*ms))
	l.Acked("m2", at(4*ms))
	r := l.Finish(at(time.Second))

	want := map[string]int64{"rate_limited": 2, "internal": 1, "bad_request": 1}
	if fmt.Sprint(r.AckErrors) != fmt.Sprint(want) {
		t.Errorf("got errors %v, want %v", r.AckErrors, want)
	}
	v := r.Values()
	if got := v["ack_errors"]; got != 4 {
		t.Errorf("got ack_errors %v, want 4", got)
	}
	if got, want := v["ack_error_rate"], 4.0/5; got != want {
		t.Errorf("got ack_error_rate %v, want %v", got, want)
	}
}

func TestLostExamplesAreTheFirstTenInOrder(t *testing.T) {
	l := New(t0, time.Second)
	for i := range 30 {
		id := fmt.Sprintf("m%02d", i)
		l.Expect(id, "r", at(0), []int32{0, 1})
		l.Acked(id, at(ms))
	}
	r := l.Finish(at(time.Second))
	want := []string{"m00→0", "m00→1", "m01→0", "m01→1", "m02→0", "m02→1", "m03→0", "m03→1", "m04→0", "m04→1"}
	if !slices.Equal(r.LostExamples, want) {
		t.Errorf("got %q, want %q", r.LostExamples, want)
	}
	if r.Lost != 60 {
		t.Errorf("got lost %d, want 60", r.Lost)
	}
}

// within reports whether got is within frac of want.
func within(got, want time.Duration, frac float64) bool {
	return math.Abs(float64(got-want)) <= frac*float64(want)
}

func TestLatencyPercentiles(t *testing.T) {
	tests := []struct {
		name                string
		fast, slow          int // deliveries at 10ms and at 2s
		p50, p90, p99, p999 time.Duration
	}{
		{name: "a few slow ones show only beyond p99", fast: 1000, slow: 10, p50: 10 * ms, p90: 10 * ms, p99: 10 * ms, p999: 2 * time.Second},
		{name: "a stall of 2% shows in p99", fast: 1000, slow: 20, p50: 10 * ms, p90: 10 * ms, p99: 2 * time.Second, p999: 2 * time.Second},
		{name: "no stall", fast: 100, p50: 10 * ms, p90: 10 * ms, p99: 10 * ms, p999: 10 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(t0, time.Second)
			n := 0
			deliver := func(latency time.Duration) {
				id := fmt.Sprint("m", n)
				n++
				intended := at(time.Duration(n) * ms)
				l.Expect(id, "r", intended, []int32{0})
				l.Acked(id, intended.Add(latency/2))
				l.Delivered(0, "r", id, int64(n), intended.Add(latency), false)
			}
			for range tt.fast {
				deliver(10 * ms)
			}
			for range tt.slow {
				deliver(2 * time.Second)
			}
			r := l.Finish(at(time.Minute))
			d := r.Delivery
			for _, c := range []struct {
				name      string
				got, want time.Duration
			}{
				{"p50", d.P50, tt.p50}, {"p90", d.P90, tt.p90}, {"p99", d.P99, tt.p99}, {"p99.9", d.P999, tt.p999},
			} {
				// Three significant figures: a bucket is at most 0.1% wide.
				if !within(c.got, c.want, 0.001) {
					t.Errorf("got %s %v, want %v", c.name, c.got, c.want)
				}
			}
			wantMax := 10 * ms
			if tt.slow > 0 {
				wantMax = 2 * time.Second
			}
			if d.Min != 10*ms || d.Max != wantMax {
				t.Errorf("got min %v max %v, want exactly 10ms and %v", d.Min, d.Max, wantMax)
			}
			wantMean := (time.Duration(tt.fast)*10*ms + time.Duration(tt.slow)*2*time.Second) / time.Duration(tt.fast+tt.slow)
			if !within(d.Mean, wantMean, 1e-9) {
				t.Errorf("got mean %v, want %v", d.Mean, wantMean)
			}
			if d.Count != int64(tt.fast+tt.slow) || r.DeliveryHist.TotalCount() != d.Count {
				t.Errorf("got count %d (histogram %d), want %d", d.Count, r.DeliveryHist.TotalCount(), tt.fast+tt.slow)
			}
			if !within(r.Ack.P50, 5*ms, 0.001) || r.Ack.Max != wantMax/2 {
				t.Errorf("got ack p50 %v max %v, want 5ms and %v", r.Ack.P50, r.Ack.Max, wantMax/2)
			}
			v := r.Values()
			if got, want := v["delivery_max"], wantMax.Seconds(); got != want {
				t.Errorf("got delivery_max %v s, want %v", got, want)
			}
			if got, want := v["delivery_p99"], d.P99.Seconds(); got != want {
				t.Errorf("got delivery_p99 %v s, want %v", got, want)
			}
		})
	}
}

func TestLatencyIsMeasuredFromTheIntendedTime(t *testing.T) {
	l := New(t0, time.Second)
	// The generator meant to send at 1s but only got round to it later; the
	// server answered promptly after that. The wait still counts.
	l.Expect("m1", "r", at(time.Second), []int32{0})
	l.Acked("m1", at(2500*ms))
	l.Delivered(0, "r", "m1", 1, at(2600*ms), false)
	r := l.Finish(at(3 * time.Second))
	if r.Ack.Max != 1500*ms || r.Delivery.Max != 1600*ms {
		t.Errorf("got ack %v delivery %v, want 1.5s and 1.6s", r.Ack.Max, r.Delivery.Max)
	}
}

func TestReplayedLatencyIsKeptApart(t *testing.T) {
	l := New(t0, time.Second)
	l.Expect("m1", "r", at(0), []int32{0, 1})
	l.Delivered(0, "r", "m1", 1, at(10*ms), false)
	l.Delivered(1, "r", "m1", 1, at(30*time.Second), true)
	r := l.Finish(at(time.Minute))
	if r.Delivery.Count != 1 || r.Delivery.Max != 10*ms {
		t.Errorf("got live deliveries %d max %v, want 1 at 10ms", r.Delivery.Count, r.Delivery.Max)
	}
	if r.ReplayedDelivery.Count != 1 || r.ReplayedDelivery.Max != 30*time.Second {
		t.Errorf("got replayed %d max %v, want 1 at 30s", r.ReplayedDelivery.Count, r.ReplayedDelivery.Max)
	}
}

func TestLatenciesOutOfRangeAreClampedAndCounted(t *testing.T) {
	l := New(t0, time.Second)
	l.Expect("early", "r", at(time.Second), []int32{0})
	l.Delivered(0, "r", "early", 1, at(900*ms), false) // before its intended time
	l.Expect("late", "r", at(0), []int32{0})
	l.Delivered(0, "r", "late", 2, at(2*time.Hour), false)
	r := l.Finish(at(2 * time.Hour))
	if r.Clamped != 2 {
		t.Errorf("got %d clamped, want 2", r.Clamped)
	}
	if r.Delivery.Min != 0 || r.Delivery.Max != time.Hour {
		t.Errorf("got min %v max %v, want 0 and 1h", r.Delivery.Min, r.Delivery.Max)
	}
}

func TestSendRateFollowsIntendedTimes(t *testing.T) {
	l := New(t0, time.Second)
	// 100 messages per second for 10 seconds, then a long drain.
	for i := range 1000 {
		l.Expect(fmt.Sprint("m", i), "r", at(time.Duration(i)*10*ms), []int32{0})
	}
	r := l.Finish(at(30 * time.Second))
	if got := r.Values()["send_rate"]; math.Abs(got-100) > 1e-9 {
		t.Errorf("got send_rate %v, want 100", got)
	}
}

func TestValuesHaveEveryThresholdKey(t *testing.T) {
	v := New(t0, time.Second).Finish(at(time.Second)).Values()
	for _, k := range []string{
		"ack_p50", "ack_p90", "ack_p99", "ack_p999", "ack_max",
		"delivery_p50", "delivery_p90", "delivery_p99", "delivery_p999", "delivery_max",
		"sent", "acked", "delivered", "lost", "duplicates", "reordered", "unanswered",
		"ack_errors", "ack_error_rate", "connect_errors", "send_rate",
	} {
		if _, ok := v[k]; !ok {
			t.Errorf("no %q in Values", k)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	const (
		senders    = 32
		perSender  = 200
		recipients = 10
	)
	members := make([]int32, recipients)
	for i := range members {
		members[i] = int32(i)
	}
	l := New(t0, 100*ms)
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
				l.Snapshot(at(time.Duration(i) * ms))
			}
		}
	})
	var seq atomic.Int64
	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			room := fmt.Sprint("room", g%4)
			for i := range perSender {
				id := fmt.Sprintf("g%d-%d", g, i)
				intended := at(time.Duration(i) * 5 * ms)
				l.Expect(id, room, intended, members)
				l.Acked(id, intended.Add(2*ms))
				for _, u := range members {
					if u == 0 && i%10 == 0 {
						continue // a tenth of the messages never reach user 0
					}
					l.Delivered(u, room, id, seq.Add(1), intended.Add(4*ms), false)
				}
				l.Delivered(1, room, id, seq.Add(1), intended.Add(5*ms), false) // duplicate
				l.Delivered(1, room, "stranger", seq.Add(1), intended.Add(5*ms), false)
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()

	r := l.Finish(at(2 * time.Second))
	const sent = senders * perSender
	want := tally{
		Sent: sent, Acked: sent, Expected: sent * recipients,
		Delivered: sent*recipients - sent/10, Lost: sent / 10,
		Duplicates: sent, Foreign: sent,
	}
	got := tallyOf(r)
	got.Reordered = 0 // goroutines race for seqs, so some deliveries do come out of order
	if got != want {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	var p Point
	for _, q := range r.Timeline {
		p.Sent += q.Sent
		p.Acked += q.Acked
		p.Delivered += q.Delivered
	}
	if p.Sent != r.Sent || p.Acked != r.Acked || p.Delivered != r.Delivered {
		t.Errorf("timeline adds up to sent %d acked %d delivered %d, want %d %d %d",
			p.Sent, p.Acked, p.Delivered, r.Sent, r.Acked, r.Delivered)
	}
	if r.Delivery.Count != r.Delivered || r.Delivery.Max != 4*ms {
		t.Errorf("got %d delivery latencies, max %v, want %d at 4ms", r.Delivery.Count, r.Delivery.Max, r.Delivered)
	}
}

// BenchmarkDelivered measures the hot path as a fan-out exercises it: every
// goroutine plays a share of a room's 50 members and reports their deliveries
// of the same stream of messages, so the goroutines meet on each message's
// state while each recipient's state stays with one goroutine, as it does
// with one reader goroutine per connection.
func BenchmarkDelivered(b *testing.B) {
	const fanout = 50
	members := make([]int32, fanout)
	for i := range members {
		members[i] = int32(i)
	}
	workers := runtime.GOMAXPROCS(0)
	// Enough messages for the case where one goroutine does all the work.
	ids := make([]string, b.N*workers/fanout+2)
	l := New(t0, time.Second)
	for i := range ids {
		ids[i] = fmt.Sprintf("bench-%08d", i)
		l.Expect(ids[i], "room-1", at(0), members)
		l.Acked(ids[i], at(ms))
	}
	var nextWorker atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := int(nextWorker.Add(1)-1) % workers
		var mine []int32
		for _, u := range members {
			if int(u)%workers == w {
				mine = append(mine, u)
			}
		}
		msg, next := 0, 0
		for pb.Next() {
			if next == len(mine) {
				msg, next = msg+1, 0
			}
			// 50,000 deliveries per second of the timeline, so that intervals
			// turn over and get published as in a real run.
			when := at(time.Duration(msg) * fanout * 20 * time.Microsecond)
			l.Delivered(mine[next], "room-1", ids[msg], int64(msg+1), when, false)
			next++
		}
	})
	b.StopTimer()
	if r := l.Finish(at(time.Hour)); r.Delivered != int64(b.N) || r.Duplicates != 0 {
		b.Fatalf("got %d delivered and %d duplicates, want %d and none", r.Delivered, r.Duplicates, b.N)
	}
}

// BenchmarkMessage measures a whole message's life in one goroutine: Expect,
// Acked, and a delivery to each of its ten recipients.
func BenchmarkMessage(b *testing.B) {
	members := []int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	ids := make([]string, b.N)
	for i := range ids {
		ids[i] = fmt.Sprintf("bench-%08d", i)
	}
	l := New(t0, time.Second)
	b.ReportAllocs()
	b.ResetTimer()
	for i, id := range ids {
		intended := at(time.Duration(i) * 200 * time.Microsecond)
		l.Expect(id, "room-1", intended, members)
		l.Acked(id, intended.Add(ms))
		for _, u := range members {
			l.Delivered(u, "room-1", id, int64(i+1), intended.Add(2*ms), false)
		}
	}
}
