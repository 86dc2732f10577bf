package schedule

import (
	"errors"
	"fmt"
	"iter"
	"math"
	"sort"
	"time"
)

// Plan is a run's stages laid end to end: the rate at every moment and the
// intended time of every arrival (a message to send).
//
// Let N(t) be the number of arrivals expected by offset t, the integral of the
// rate from the run's start. Arrival n (counting from 0) happens at the first
// moment N passes n: t_n = inf{t : N(t) > n}. So a constant rate r from the
// start puts arrival n at exactly n/r (the first at 0), every arrival lies in
// [0, Duration), a stage whose rate is zero holds none, and the plan holds
// ⌈N(Duration)⌉ arrivals. Offsets are rounded to the nearest nanosecond. An
// arrival belongs to the stage its time falls in, stages being half open:
// one that lands exactly on a boundary belongs to the stage that starts
// there.
//
// A Plan is immutable and safe for concurrent use.
type Plan struct {
	spans    []Span
	segments []segment
	total    int
}

// Span is a stage placed on the run's timeline with the arrivals it holds:
// arrivals First to First+Count-1.
type Span struct {
	Stage      Stage
	Start, End time.Duration // offsets from the run's start
	First      int
	Count      int
}

// Arrival is one intended send.
type Arrival struct {
	Offset time.Duration // from the run's start
	Stage  int           // index of the stage it falls in
}

// segment is a stretch of the plan over which the rate is linear: a constant
// or ramp stage is one, a staircase one per step, a spike up to three.
type segment struct {
	start, dur time.Duration
	rate       float64 // at start, per second
	slope      float64 // per second, per second
	n0, n1     float64 // N at start and end
	stage      int
}

// NewPlan lays out the stages, or reports every problem with them, each
// naming the stage and field.
func NewPlan(stages []Stage) (*Plan, error) {
	if len(stages) == 0 {
		return nil, errors.New("stages: at least one stage is required")
	}
	var errs []error
	for i, s := range stages {
		if err := s.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.label(i), err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	p := &Plan{spans: make([]Span, len(stages))}
	var start time.Duration
	n := 0.0
	for i, s := range stages {
		end := start + s.Duration
		if end < start {
			return nil, fmt.Errorf("%s: duration: the stages add up to more than %v", s.label(i), time.Duration(math.MaxInt64))
		}
		p.spans[i] = Span{Stage: s, Start: start, End: end}
		for _, seg := range pieces(s) {
			seg.start += start
			seg.stage = i
			seg.n0 = n
			n += count(seg)
			seg.n1 = n
			p.segments = append(p.segments, seg)
		}
		start = end
	}

	// The float N may sit a hair above a whole number that the exact
	// integral hits (0.7/s for 30s), promising an arrival the inversion
	// then finds at the very end: trust the inversion.
	p.total = int(math.Ceil(n))
	for p.total > 0 {
		if _, ok := p.Arrival(p.total - 1); ok {
			break
		}
		p.total--
	}
	for i := range p.spans {
		first := sort.Search(p.total, func(n int) bool {
			a, _ := p.Arrival(n)
			return a.Stage >= i
		})
		p.spans[i].First = first
		if i > 0 {
			p.spans[i-1].Count = first - p.spans[i-1].First
		}
	}
	last := &p.spans[len(p.spans)-1]
	last.Count = p.total - last.First
	return p, nil
}

// pieces splits a valid stage into segments, with offsets from the stage's
// start.
func pieces(s Stage) []segment {
	switch s.shape() {
	case Ramp:
		return []segment{{dur: s.Duration, rate: s.From, slope: (s.To - s.From) / s.Duration.Seconds()}}
	case Steps:
		var segs []segment
		for at, level := time.Duration(0), s.From; at < s.Duration; at += s.Every {
			segs = append(segs, segment{start: at, dur: min(s.Every, s.Duration-at), rate: level})
			if s.To >= s.From {
				level = min(level+s.Step, s.To)
			} else {
				level = max(level-s.Step, s.To)
			}
		}
		return segs
	case Spike:
		segs := []segment{
			{start: 0, dur: s.At, rate: s.Rate},
			{start: s.At, dur: s.For, rate: s.Peak},
			{start: s.At + s.For, dur: s.Duration - s.At - s.For, rate: s.Rate},
		}
		// A spike at the stage's very start or end leaves an empty piece.
		var kept []segment
		for _, seg := range segs {
			if seg.dur > 0 {
				kept = append(kept, seg)
			}
		}
		return kept
	default:
		return []segment{{dur: s.Duration, rate: s.Rate}}
	}
}

// count is the number of arrivals a segment expects.
func count(s segment) float64 {
	d := s.dur.Seconds()
	end := s.rate + s.slope*d
	// The mean rate times the duration: exact for whole-number rates and
	// durations, where rate*d + slope*d²/2 could round.
	return (s.rate + end) / 2 * d
}

// Duration is how long the plan lasts: the stages' durations added up.
func (p *Plan) Duration() time.Duration { return p.spans[len(p.spans)-1].End }

// Total is the number of arrivals in the plan.
func (p *Plan) Total() int { return p.total }

// Spans lists the stages on the run's timeline.
func (p *Plan) Spans() []Span { return append([]Span(nil), p.spans...) }

// RateAt is the rate, in messages per second, at offset off from the run's
// start, and the stage that offset falls in; past either end it is 0 and -1.
func (p *Plan) RateAt(off time.Duration) (rate float64, stage int) {
	if off < 0 || off >= p.Duration() {
		return 0, -1
	}
	i := sort.Search(len(p.segments), func(i int) bool {
		s := p.segments[i]
		return s.start+s.dur > off
	})
	s := p.segments[i]
	return s.rate + s.slope*(off-s.start).Seconds(), s.stage
}

// Arrival returns arrival n (counting from 0), or ok=false when the plan
// holds no such arrival. It costs a binary search over the plan's segments;
// to walk the arrivals in order, Arrivals is cheaper.
func (p *Plan) Arrival(n int) (a Arrival, ok bool) {
	if n < 0 {
		return Arrival{}, false
	}
	i := sort.Search(len(p.segments), func(i int) bool { return p.segments[i].n1 > float64(n) })
	return p.arrivalIn(i, n)
}

// Arrivals yields every arrival in order with its number, at O(1) a step.
func (p *Plan) Arrivals() iter.Seq2[int, Arrival] {
	return func(yield func(int, Arrival) bool) {
		seg := 0
		for n := range p.total {
			for seg < len(p.segments) && p.segments[seg].n1 <= float64(n) {
				seg++
			}
			a, ok := p.arrivalIn(seg, n)
			if !ok || !yield(n, a) {
				return
			}
		}
	}
}

// arrivalIn places arrival n, which the cumulative counts put in segment i:
// it solves for the offset x into the segment where the arrivals so far
// reach n, rate·x + slope·x²/2 = m.
func (p *Plan) arrivalIn(i, n int) (Arrival, bool) {
	for ; i < len(p.segments); i++ {
		s := p.segments[i]
		if s.n1 <= s.n0 {
			continue // a zero-rate segment holds no arrival
		}
		m := float64(n) - s.n0
		var x time.Duration
		switch {
		case m <= 0:
			// Also the case of a ramp from zero, whose formula below is
			// 0/0 at its first arrival.
		case s.slope == 0:
			// m·1e9 is exact for a whole m below 9e6 (as after stages
			// of whole counts), so a constant rate gives n/r rounded
			// once, with no drift however long.
			x = time.Duration(math.Round(m * 1e9 / s.rate))
		default:
			// The root of slope·x²/2 + rate·x − m = 0 written to
			// avoid cancellation: (−rate + √disc)/slope loses digits
			// when slope is small, and divides by zero when it is 0.
			disc := max(0, s.rate*s.rate+2*s.slope*m)
			x = time.Duration(math.Round(2 * m / (s.rate + math.Sqrt(disc)) * 1e9))
		}
		if x >= s.dur {
			// n sits on the segment's end within float error: it is the
			// first arrival of the next segment that has any.
			continue
		}
		return Arrival{Offset: s.start + x, Stage: s.stage}, true
	}
	return Arrival{}, false
}
