package schedule

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestConstantRateIsExactWithNoDrift(t *testing.T) {
	const arrivals = 1_000_000
	// Rates as fractions num/den, so that the exact offset of arrival n,
	// n·den/num seconds, is a rational the test can hold in integers.
	for _, rate := range []struct{ num, den int64 }{{3, 1}, {20, 1}, {1000, 1}, {15, 2}} {
		r := float64(rate.num) / float64(rate.den)
		// Enough whole seconds for a million arrivals.
		d := time.Duration(math.Ceil(arrivals/r)) * time.Second
		p := mustPlan(t, Stage{Duration: d, Rate: r})
		if want := int(r * d.Seconds()); p.Total() != want {
			t.Errorf("rate %v for %v: Total() = %d, want %d", r, d, p.Total(), want)
		}
		for n, a := range p.Arrivals() {
			if n == arrivals {
				break
			}
			// The plan may only round to the nearest nanosecond:
			// |offset − n·1e9·den/num| ≤ ½, times 2·num.
			if miss := 2 * (int64(a.Offset)*rate.num - int64(n)*int64(time.Second)*rate.den); max(miss, -miss) > rate.num {
				t.Fatalf("rate %v: arrival %d at %dns, want %d·1e9/%v ns to the nearest nanosecond", r, n, a.Offset, n, r)
			}
		}
	}
}

func TestRampCountsMatchTheIntegral(t *testing.T) {
	// N(t) = 5t² for a ramp from 0 to 100 over 10s: 500 in all, and
	// 5(k+1)² − 5k² = 10k + 5 in second k.
	p := mustPlan(t, Stage{Duration: 10 * time.Second, Shape: Ramp, From: 0, To: 100})
	if got := p.Total(); got != 500 {
		t.Errorf("Total() = %d, want 500", got)
	}
	perSecond := countPer(p, time.Second)
	for k, got := range perSecond {
		if want := 10*k + 5; abs(got-want) > 1 {
			t.Errorf("second %d: got %d arrivals, want %d ±1", k, got, want)
		}
	}
	gaps := gapsOf(p)
	for i := 1; i < len(gaps); i++ {
		// Density increases: each gap is no longer than the one before,
		// give or take the nanosecond of rounding.
		if gaps[i] > gaps[i-1]+time.Nanosecond {
			t.Fatalf("gap %d is %v, longer than gap %d (%v): density should increase", i, gaps[i], i-1, gaps[i-1])
		}
	}
}

func TestRampDownMirrorsRampUp(t *testing.T) {
	p := mustPlan(t, Stage{Duration: 10 * time.Second, Shape: Ramp, From: 100, To: 0})
	if got := p.Total(); got != 500 {
		t.Errorf("Total() = %d, want 500", got)
	}
	for k, got := range countPer(p, time.Second) {
		if want := 10*(9-k) + 5; abs(got-want) > 1 {
			t.Errorf("second %d: got %d arrivals, want %d ±1", k, got, want)
		}
	}
}

func TestFlatRampIsConstant(t *testing.T) {
	ramp := mustPlan(t, Stage{Duration: 3 * time.Second, Shape: Ramp, From: 40, To: 40})
	constant := mustPlan(t, Stage{Duration: 3 * time.Second, Rate: 40})
	if ramp.Total() != constant.Total() {
		t.Fatalf("Total() = %d, want %d as for a constant 40/s", ramp.Total(), constant.Total())
	}
	for n, a := range ramp.Arrivals() {
		if want, _ := constant.Arrival(n); a != want {
			t.Fatalf("arrival %d = %+v, want %+v", n, a, want)
		}
	}
}

func TestStepsAndSpikeCountPerSegment(t *testing.T) {
	tests := []struct {
		name   string
		stage  Stage
		window time.Duration
		want   []int
	}{
		{
			name:   "steps up hold at to",
			stage:  Stage{Duration: 10 * time.Second, Shape: Steps, From: 10, To: 40, Step: 10, Every: 2 * time.Second},
			window: 2 * time.Second,
			want:   []int{20, 40, 60, 80, 80},
		},
		{
			name:   "steps down",
			stage:  Stage{Duration: 6 * time.Second, Shape: Steps, From: 30, To: 10, Step: 10, Every: 2 * time.Second},
			window: 2 * time.Second,
			want:   []int{60, 40, 20},
		},
		{
			name:   "last step cut short",
			stage:  Stage{Duration: 5 * time.Second, Shape: Steps, From: 10, To: 30, Step: 10, Every: 2 * time.Second},
			window: time.Second,
			want:   []int{10, 10, 20, 20, 30},
		},
		{
			name:   "spike in the middle",
			stage:  Stage{Duration: 10 * time.Second, Shape: Spike, Rate: 10, Peak: 100, At: 4 * time.Second, For: 2 * time.Second},
			window: 2 * time.Second,
			want:   []int{20, 20, 200, 20, 20},
		},
		{
			name:   "spike at the start",
			stage:  Stage{Duration: 4 * time.Second, Shape: Spike, Rate: 5, Peak: 50, For: 2 * time.Second},
			window: 2 * time.Second,
			want:   []int{100, 10},
		},
		{
			name:   "spike to the end",
			stage:  Stage{Duration: 4 * time.Second, Shape: Spike, Rate: 5, Peak: 50, At: 2 * time.Second, For: 2 * time.Second},
			window: 2 * time.Second,
			want:   []int{10, 100},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustPlan(t, tt.stage)
			got := countPer(p, tt.window)
			if !slices.Equal(got, tt.want) {
				t.Errorf("arrivals per %v = %v, want %v", tt.window, got, tt.want)
			}
			if want := sum(tt.want); p.Total() != want {
				t.Errorf("Total() = %d, want %d", p.Total(), want)
			}
		})
	}
}

func TestZeroRateStagesHoldNoArrivals(t *testing.T) {
	p := mustPlan(t,
		Stage{Name: "quiet", Duration: 5 * time.Second},
		Stage{Name: "busy", Duration: 2 * time.Second, Rate: 10},
		Stage{Name: "ramp of nothing", Duration: 3 * time.Second, Shape: Ramp},
		Stage{Name: "again", Duration: time.Second, Rate: 10},
		Stage{Name: "tail", Duration: time.Second, Shape: Steps, Step: 1, Every: time.Second},
	)
	if got := p.Total(); got != 30 {
		t.Fatalf("Total() = %d, want 30", got)
	}
	wantCounts := []int{0, 20, 0, 10, 0}
	for i, s := range p.Spans() {
		if s.Count != wantCounts[i] {
			t.Errorf("stage %d (%s) holds %d arrivals, want %d", i, s.Stage.Name, s.Count, wantCounts[i])
		}
	}
	first, _ := p.Arrival(0)
	if want := (Arrival{Offset: 5 * time.Second, Stage: 1}); first != want {
		t.Errorf("Arrival(0) = %+v, want %+v: the first arrival is where the rate starts", first, want)
	}
	resumed, _ := p.Arrival(20)
	if want := (Arrival{Offset: 10 * time.Second, Stage: 3}); resumed != want {
		t.Errorf("Arrival(20) = %+v, want %+v", resumed, want)
	}
	if a, ok := p.Arrival(30); ok {
		t.Errorf("Arrival(30) = %+v, want none past the end", a)
	}

	idle := mustPlan(t, Stage{Duration: time.Minute})
	if idle.Total() != 0 {
		t.Errorf("an idle plan: Total() = %d, want 0", idle.Total())
	}
	for n, a := range idle.Arrivals() {
		t.Errorf("an idle plan yielded arrival %d: %+v", n, a)
	}
}

func TestCountsThatRoundAboveAWholeNumberPromiseNoExtraArrival(t *testing.T) {
	tests := []struct {
		rate float64
		d    time.Duration
		want int
	}{
		// In float64 these counts come out as 55.00000000000001 and so on.
		{1.1, 50 * time.Second, 55},
		{2.2, 85 * time.Second, 187},
		{2.2, 90 * time.Second, 198},
		// And these a hair below: 998.9999999999999.
		{33.3, 30 * time.Second, 999},
	}
	for _, tt := range tests {
		p := mustPlan(t, Stage{Duration: tt.d, Rate: tt.rate}, Stage{Duration: tt.d, Rate: tt.rate})
		if got := p.Total(); got != 2*tt.want {
			t.Errorf("%v/s for 2×%v: Total() = %d, want %d", tt.rate, tt.d, got, 2*tt.want)
		}
		if got := p.Spans()[0].Count; got != tt.want {
			t.Errorf("%v/s for %v: the first stage holds %d, want %d", tt.rate, tt.d, got, tt.want)
		}
	}
}

func TestArrivalsAreOrderedAndAgreeWithTheRate(t *testing.T) {
	p := mustPlan(t,
		Stage{Name: "warm", Duration: 3 * time.Second, Shape: Ramp, From: 0.5, To: 37.3},
		Stage{Name: "stairs", Duration: 7 * time.Second, Shape: Steps, From: 37.3, To: 3.1, Step: 4.4, Every: 700 * time.Millisecond},
		Stage{Name: "pause", Duration: 1500 * time.Millisecond},
		Stage{Name: "burst", Duration: 5 * time.Second, Shape: Spike, Rate: 13.7, Peak: 211, At: 1234 * time.Millisecond, For: 777 * time.Millisecond},
		Stage{Name: "down", Duration: 4 * time.Second, Shape: Ramp, From: 90, To: 0},
	)
	spans := p.Spans()
	prev := time.Duration(-1)
	seen := 0
	for n, a := range p.Arrivals() {
		if n != seen {
			t.Fatalf("arrival numbered %d, want %d", n, seen)
		}
		seen++
		if a.Offset < prev {
			t.Fatalf("arrival %d at %v comes before arrival %d at %v", n, a.Offset, n-1, prev)
		}
		prev = a.Offset
		if rate, stage := p.RateAt(a.Offset); stage != a.Stage || rate == 0 && a.Offset != spans[stage].Start {
			t.Fatalf("arrival %d (%+v): RateAt = %v in stage %d, want a positive rate in the same stage", n, a, rate, stage)
		}
		if s := spans[a.Stage]; n < s.First || n >= s.First+s.Count {
			t.Fatalf("arrival %d is in stage %d, whose span holds arrivals %d to %d", n, a.Stage, s.First, s.First+s.Count-1)
		}
		if got, ok := p.Arrival(n); !ok || got != a {
			t.Fatalf("Arrival(%d) = %+v, %v; the iterator gave %+v", n, got, ok, a)
		}
	}
	if seen != p.Total() {
		t.Errorf("Arrivals yielded %d, Total() = %d", seen, p.Total())
	}
	if _, ok := p.Arrival(-1); ok {
		t.Error("Arrival(-1) is ok, want none")
	}
}

func TestRateAt(t *testing.T) {
	p := mustPlan(t,
		Stage{Duration: 10 * time.Second, Shape: Ramp, From: 0, To: 100},
		Stage{Duration: 10 * time.Second, Shape: Spike, Rate: 10, Peak: 90, At: 2 * time.Second, For: time.Second},
	)
	tests := []struct {
		off       time.Duration
		rate      float64
		wantStage int
	}{
		{-time.Nanosecond, 0, -1},
		{0, 0, 0},
		{2500 * time.Millisecond, 25, 0},
		{10 * time.Second, 10, 1},
		{12 * time.Second, 90, 1},
		{13 * time.Second, 10, 1},
		{20 * time.Second, 0, -1},
	}
	for _, tt := range tests {
		rate, stage := p.RateAt(tt.off)
		if math.Abs(rate-tt.rate) > 1e-9 || stage != tt.wantStage {
			t.Errorf("RateAt(%v) = %v, %d; want %v, %d", tt.off, rate, stage, tt.rate, tt.wantStage)
		}
	}
	if got, want := p.Duration(), 20*time.Second; got != want {
		t.Errorf("Duration() = %v, want %v", got, want)
	}
}

func TestValidationNamesTheStageAndField(t *testing.T) {
	ok := Stage{Name: "ok", Duration: time.Second, Rate: 1}
	tests := []struct {
		name  string
		stage Stage
		want  []string
	}{
		{"no duration", Stage{Name: "ramp-up", Shape: Ramp, To: 5}, []string{"stages[1] (ramp-up): duration must be > 0, got 0s"}},
		{"negative ramp end", Stage{Name: "ramp-up", Duration: time.Minute, Shape: Ramp, To: -5}, []string{"stages[1] (ramp-up): to must be ≥ 0, got -5"}},
		{"unnamed stage", Stage{Duration: time.Minute, Rate: -1}, []string{"stages[1]: rate must be ≥ 0, got -1"}},
		{"not a number", Stage{Duration: time.Minute, Rate: math.NaN()}, []string{"rate must be ≥ 0, got NaN"}},
		{"absurd rate", Stage{Duration: time.Minute, Rate: 5e6}, []string{"rate must be ≤ 1e+06 messages a second"}},
		{"unknown shape", Stage{Duration: time.Minute, Shape: "sine"}, []string{`shape must be one of constant, ramp, steps, spike, got "sine"`}},
		{"another shape's field", Stage{Duration: time.Minute, Shape: Ramp, Rate: 5, To: 10}, []string{"rate is not used by a ramp stage"}},
		{"constant with peak", Stage{Duration: time.Minute, Rate: 5, Peak: 10}, []string{"peak is not used by a constant stage"}},
		{"steps without step or every", Stage{Duration: time.Minute, Shape: Steps, To: 10}, []string{"step must be > 0, got 0", "every must be > 0, got 0s"}},
		{"steps too fine", Stage{Duration: time.Hour, Shape: Steps, To: 10, Step: 1, Every: time.Millisecond}, []string{"every is too short"}},
		{"spike past the end", Stage{Duration: 10 * time.Second, Shape: Spike, Rate: 1, Peak: 9, At: 8 * time.Second, For: 5 * time.Second}, []string{"for runs past the stage's end: at (8s) + for (5s) is more than duration (10s)"}},
		{"spike without for", Stage{Duration: 10 * time.Second, Shape: Spike, Peak: 9, At: -time.Second}, []string{"at must be ≥ 0, got -1s", "for must be > 0, got 0s"}},
		{"reconnect above 1", Stage{Duration: time.Minute, Rate: 1, Reconnect: 1.5}, []string{"reconnect must be a fraction from 0 to 1, got 1.5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewPlan([]Stage{ok, tt.stage})
			if err == nil {
				t.Fatalf("NewPlan accepted %+v", tt.stage)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("error %q holds no *FieldError", err)
			}
		})
	}
	if _, err := NewPlan(nil); err == nil || !strings.Contains(err.Error(), "at least one stage") {
		t.Errorf("NewPlan(nil) = %v, want an error asking for a stage", err)
	}
}

func BenchmarkArrival(b *testing.B) {
	// A staircase of 3600 steps: the binary search has segments to cross.
	p := benchPlan(b)
	b.ResetTimer()
	for i := range b.N {
		if _, ok := p.Arrival(i % p.Total()); !ok {
			b.Fatal("arrival missing")
		}
	}
}

func BenchmarkArrivals(b *testing.B) {
	p := benchPlan(b)
	b.ResetTimer()
	n := 0
	for n < b.N {
		for range p.Arrivals() {
			if n++; n == b.N {
				break
			}
		}
	}
}

func benchPlan(b *testing.B) *Plan {
	p, err := NewPlan([]Stage{
		{Duration: time.Hour, Shape: Steps, From: 10, To: 3610, Step: 1, Every: time.Second},
	})
	if err != nil {
		b.Fatal(err)
	}
	return p
}

func mustPlan(t *testing.T, stages ...Stage) *Plan {
	t.Helper()
	p, err := NewPlan(stages)
	if err != nil {
		t.Fatalf("NewPlan: %v", err)
	}
	return p
}

// countPer counts the plan's arrivals in consecutive windows of width w.
func countPer(p *Plan, w time.Duration) []int {
	counts := make([]int, (p.Duration()+w-1)/w)
	for _, a := range p.Arrivals() {
		counts[a.Offset/w]++
	}
	return counts
}

func gapsOf(p *Plan) []time.Duration {
	var gaps []time.Duration
	prev := time.Duration(-1)
	for _, a := range p.Arrivals() {
		if prev >= 0 {
			gaps = append(gaps, a.Offset-prev)
		}
		prev = a.Offset
	}
	return gaps
}

func abs(x int) int { return max(x, -x) }

func sum(xs []int) int {
	s := 0
	for _, x := range xs {
		s += x
	}
	return s
}
