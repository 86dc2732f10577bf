package report

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/parleychat/parley/loadtest/ledger"
)

// The HTML page draws its charts as inline SVG, laid out here so that the
// template only places elements. All coordinates are in the SVG's viewBox.
const (
	chartWidth  = 800
	chartHeight = 260
	plotLeft    = 70
	plotRight   = 760 // room for the last x label, centred on the edge
	plotTop     = 20
	plotBottom  = 225
)

// chart is one SVG chart, ready for the template.
type chart struct {
	Title  string
	Note   string // shown instead of the plot when there is nothing to draw
	XTicks []tick
	YTicks []tick
	Series []series
	Marks  []mark
}

type tick struct {
	Pos   float64
	Label string
}

type series struct {
	Name  string
	Class string // a CSS class giving the line its colour
	Path  string // an SVG path
}

type mark struct {
	X     float64
	Label string
	Class string
}

// Template geometry, so that the template has no numbers of its own.
func (chart) Width() int      { return chartWidth }
func (chart) Height() int     { return chartHeight }
func (chart) Left() float64   { return plotLeft }
func (chart) Right() float64  { return plotRight }
func (chart) Top() float64    { return plotTop }
func (chart) Bottom() float64 { return plotBottom }

// scale maps a domain linearly onto a range of coordinates.
type scale struct{ d0, d1, r0, r1 float64 }

func (s scale) at(v float64) float64 {
	if s.d1 == s.d0 {
		return s.r0
	}
	return s.r0 + (v-s.d0)/(s.d1-s.d0)*(s.r1-s.r0)
}

// xy is a point of a series in data units; ok false marks a gap.
type xy struct {
	x, y float64
	ok   bool
}

// path draws a series as an SVG path, broken at gaps. Each run starts with a
// zero-length segment, which round line caps show as a dot when it stands
// alone.
func path(points []xy, x, y scale) string {
	var b strings.Builder
	pen := false
	for _, p := range points {
		if !p.ok {
			pen = false
			continue
		}
		px, py := coord(x.at(p.x)), coord(y.at(p.y))
		if !pen {
			b.WriteString("M" + px + "," + py)
			pen = true
		}
		b.WriteString("L" + px + "," + py)
	}
	return b.String()
}

func coord(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// timeAxis is the x axis of the charts over time: the run from its start.
func timeAxis(r Run) (scale, []tick) {
	res := r.Result
	end := time.Duration(len(res.Timeline)) * res.Interval
	end = max(end, r.Duration, time.Second)
	s := scale{0, end.Seconds(), plotLeft, plotRight}
	step := time.Second
	for _, c := range []time.Duration{
		time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
		time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour,
	} {
		step = c
		if end/c <= 10 {
			break
		}
	}
	for end/step > 10 { // runs of more than ten hours
		step *= 2
	}
	var ticks []tick
	for t := time.Duration(0); t <= end; t += step {
		ticks = append(ticks, tick{Pos: s.at(t.Seconds()), Label: formatOffset(t)})
	}
	return s, ticks
}

// timeMarks draws the stages and the knee on a time axis.
func timeMarks(r Run, x scale) []mark {
	var marks []mark
	add := func(at time.Duration, label, class string) {
		if pos := x.at(at.Seconds()); pos >= plotLeft && pos <= plotRight {
			marks = append(marks, mark{X: pos, Label: label, Class: class})
		}
	}
	for _, st := range r.Stages {
		add(st.Offset, st.Name, "stage")
	}
	if k := r.Knee; k != nil {
		add(k.Offset, "knee "+formatRate(k.Rate)+"/s", "knee")
	}
	return marks
}

// latencyChart draws the p50 and p99 of acks and deliveries per interval on a
// logarithmic axis, where a 10ms median and a 5s stall both stay readable.
func latencyChart(r Run) chart {
	c := chart{Title: "Latency over time (per interval, from the intended send time)"}
	x, xticks := timeAxis(r)
	pick := []struct {
		name, class string
		get         func(ledger.Point) time.Duration
	}{
		{"ack p50", "ack50", func(p ledger.Point) time.Duration { return p.AckP50 }},
		{"ack p99", "ack99", func(p ledger.Point) time.Duration { return p.AckP99 }},
		{"delivery p50", "del50", func(p ledger.Point) time.Duration { return p.DeliveryP50 }},
		{"delivery p99", "del99", func(p ledger.Point) time.Duration { return p.DeliveryP99 }},
	}
	lo, hi := math.Inf(1), 0.0
	for _, p := range r.Result.Timeline {
		for _, s := range pick {
			if v := msOf(s.get(p)); v > 0 {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	if hi == 0 {
		c.Note = "No acks or deliveries to plot."
		return c
	}
	// Whole decades, at least one.
	dlo, dhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if dhi <= dlo {
		dhi = dlo + 1
	}
	y := scale{dlo, dhi, plotBottom, plotTop}
	for d := dlo; d <= dhi; d++ {
		c.YTicks = append(c.YTicks, tick{Pos: y.at(d), Label: formatDuration(fromMS(math.Pow(10, d)))})
	}
	half := r.Result.Interval.Seconds() / 2
	for _, s := range pick {
		pts := make([]xy, len(r.Result.Timeline))
		for i, p := range r.Result.Timeline {
			v := msOf(s.get(p))
			pts[i] = xy{p.Offset.Seconds() + half, math.Log10(v), v > 0}
		}
		c.Series = append(c.Series, series{Name: s.name, Class: s.class, Path: path(pts, x, y)})
	}
	c.XTicks, c.Marks = xticks, timeMarks(r, x)
	return c
}

// rateChart draws counts per interval as rates per second.
func rateChart(r Run, title string, lines []rateLine) chart {
	c := chart{Title: title}
	x, xticks := timeAxis(r)
	secs := r.Result.Interval.Seconds()
	top := 0.0
	for _, p := range r.Result.Timeline {
		for _, l := range lines {
			top = max(top, float64(l.get(p))/secs)
		}
	}
	if top == 0 {
		c.Note = "Nothing to plot."
		return c
	}
	top, step := niceAxis(top)
	y := scale{0, top, plotBottom, plotTop}
	for i := 0; float64(i)*step <= top+step/2; i++ {
		v := float64(i) * step
		c.YTicks = append(c.YTicks, tick{Pos: y.at(v), Label: formatRate(v)})
	}
	half := secs / 2
	for _, l := range lines {
		pts := make([]xy, len(r.Result.Timeline))
		for i, p := range r.Result.Timeline {
			pts[i] = xy{p.Offset.Seconds() + half, float64(l.get(p)) / secs, true}
		}
		c.Series = append(c.Series, series{Name: l.name, Class: l.class, Path: path(pts, x, y)})
	}
	c.XTicks, c.Marks = xticks, timeMarks(r, x)
	return c
}

type rateLine struct {
	name, class string
	get         func(ledger.Point) int64
}

func messageRateChart(r Run) chart {
	return rateChart(r, "Messages per second", []rateLine{
		{"sent", "sent", func(p ledger.Point) int64 { return p.Sent }},
		{"acked", "acked", func(p ledger.Point) int64 { return p.Acked }},
		{"refused", "errors", func(p ledger.Point) int64 { return p.Errors }},
	})
}

func deliveryRateChart(r Run) chart {
	return rateChart(r, "Deliveries per second", []rateLine{
		{"delivered", "delivered", func(p ledger.Point) int64 { return p.Delivered }},
	})
}

// maxNines is how far the percentile plot reaches: 99.999%.
const maxNines = 5

// ninesPercentile is the percentile at x on a "nines" axis, where each unit is
// one more nine: 0 → 0%, 1 → 90%, 2 → 99%, 3 → 99.9%.
func ninesPercentile(x float64) float64 {
	return 100 * (1 - math.Pow(10, -x))
}

// percentileChart draws latency against percentile on a nines axis, so the
// tail, where stalls and coordinated omission hide, gets as much room as the
// median.
func percentileChart(res ledger.Result) chart {
	c := chart{Title: "Latency by percentile (whole run)"}
	const steps = 100 // points per curve
	ps := make([]float64, steps+1)
	for i := range ps {
		ps[i] = ninesPercentile(float64(i) * maxNines / steps)
	}
	curves := []struct {
		name, class string
		values      []time.Duration
	}{
		{"ack", "ack99", percentiles(res.AckHist, res.Ack, ps)},
		{"delivery", "del99", percentiles(res.DeliveryHist, res.Delivery, ps)},
	}
	top := 0.0
	for _, cv := range curves {
		for _, v := range cv.values {
			top = max(top, msOf(v))
		}
	}
	if top == 0 {
		c.Note = "No latencies to plot."
		return c
	}
	top, step := niceAxis(top)
	x := scale{0, maxNines, plotLeft, plotRight}
	y := scale{0, top, plotBottom, plotTop}
	for n := 0; n <= maxNines; n++ {
		label := strconv.FormatFloat(ninesPercentile(float64(n)), 'f', max(0, n-2), 64) + "%"
		c.XTicks = append(c.XTicks, tick{Pos: x.at(float64(n)), Label: label})
	}
	for i := 0; float64(i)*step <= top+step/2; i++ {
		v := float64(i) * step
		c.YTicks = append(c.YTicks, tick{Pos: y.at(v), Label: formatDuration(fromMS(v))})
	}
	for _, cv := range curves {
		if cv.values == nil {
			continue
		}
		pts := make([]xy, len(cv.values))
		for i, v := range cv.values {
			pts[i] = xy{float64(i) * maxNines / steps, msOf(v), true}
		}
		c.Series = append(c.Series, series{Name: cv.name, Class: cv.class, Path: path(pts, x, y)})
	}
	return c
}

// niceAxis rounds an axis's top up to a multiple of a round step (1, 2 or 5
// times a power of ten) giving four to ten ticks.
func niceAxis(top float64) (niceTop, step float64) {
	raw := top / 5
	pow := math.Pow(10, math.Floor(math.Log10(raw)))
	step = 10 * pow
	for _, m := range []float64{1, 2, 5} {
		if m*pow >= raw {
			step = m * pow
			break
		}
	}
	return math.Ceil(top/step) * step, step
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fromMS(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
