package report

import (
	"encoding/json"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/parleychat/parley/loadtest/ledger"
)

// The JSON report's shape. Field names are part of its contract: tools and
// dashboards read them, so add fields rather than rename. Durations are
// milliseconds, named _ms.
type (
	jsonRun struct {
		ID          string            `json:"id"`
		Scenario    string            `json:"scenario"`
		Target      string            `json:"target"`
		Started     time.Time         `json:"started"`
		DurationMS  number            `json:"duration_ms"`
		Pass        bool              `json:"pass"`
		Counts      jsonCounts        `json:"counts"`
		Latency     jsonLatencies     `json:"latency"`
		Values      map[string]number `json:"values"`
		Thresholds  []jsonVerdict     `json:"thresholds"`
		Checks      []jsonCheck       `json:"checks"`
		Stages      []jsonStage       `json:"stages"`
		Generator   jsonGenerator     `json:"generator"`
		Pacing      jsonPacing        `json:"pacing"`
		Knee        *jsonKnee         `json:"knee,omitempty"`
		IntervalMS  number            `json:"interval_ms"`
		Timeline    []jsonPoint       `json:"timeline"`
		LostExample []string          `json:"lost_examples"`
		AckErrors   map[string]int64  `json:"ack_errors_by_code"`
	}
	jsonCounts struct {
		Sent          int64 `json:"sent"`
		Acked         int64 `json:"acked"`
		Failed        int64 `json:"failed"`
		Unanswered    int64 `json:"unanswered"`
		AckErrors     int64 `json:"ack_errors"`
		Expected      int64 `json:"expected"`
		Delivered     int64 `json:"delivered"`
		Replayed      int64 `json:"replayed"`
		Lost          int64 `json:"lost"`
		Unconfirmed   int64 `json:"unconfirmed"`
		Duplicates    int64 `json:"duplicates"`
		Reordered     int64 `json:"reordered"`
		Foreign       int64 `json:"foreign"`
		Unexpected    int64 `json:"unexpected"`
		Misrouted     int64 `json:"misrouted"`
		ConnectErrors int64 `json:"connect_errors"`
		Clamped       int64 `json:"clamped"`
	}
	jsonLatencies struct {
		Ack      jsonLatency `json:"ack"`
		Delivery jsonLatency `json:"delivery"`
		Replayed jsonLatency `json:"replayed"`
	}
	jsonLatency struct {
		Count  int64  `json:"count"`
		MinMS  number `json:"min_ms"`
		MeanMS number `json:"mean_ms"`
		P50MS  number `json:"p50_ms"`
		P90MS  number `json:"p90_ms"`
		P99MS  number `json:"p99_ms"`
		P999MS number `json:"p999_ms"`
		MaxMS  number `json:"max_ms"`
		// Distribution is the latency at each of a fixed list of percentiles,
		// from the full histogram (absent for replayed deliveries).
		Distribution []jsonPercentile `json:"distribution"`
	}
	jsonPercentile struct {
		Percentile float64 `json:"percentile"`
		MS         number  `json:"ms"`
	}
	jsonVerdict struct {
		Text string `json:"text"`
		Got  number `json:"got"`
		Unit string `json:"unit"`
		Pass bool   `json:"pass"`
	}
	jsonCheck struct {
		Name    string            `json:"name"`
		Pass    bool              `json:"pass"`
		Detail  string            `json:"detail"`
		Figures map[string]string `json:"figures"`
		Table   [][]string        `json:"table,omitempty"` // a header row, then a row per comparison
	}
	jsonStage struct {
		Name     string `json:"name"`
		OffsetMS number `json:"offset_ms"`
	}
	jsonGenerator struct {
		CPUSeconds         number `json:"cpu_seconds"`
		LoadCores          number `json:"load_cores"`
		MaxSchedulingLagMS number `json:"max_scheduling_lag_ms"`
		P99SchedulingLagMS number `json:"p99_scheduling_lag_ms"`
		Saturated          bool   `json:"saturated"`
		Connections        int    `json:"connections"`
		Goroutines         int    `json:"goroutines"`
	}
	// jsonPacing is how much the servers' rate limits held the generator
	// back: REST calls answered 429, and frames answered rate_limited.
	jsonPacing struct {
		REST   jsonPaced `json:"rest"`
		Frames jsonPaced `json:"frames"`
	}
	jsonPaced struct {
		Refusals int64  `json:"refusals"`
		Waits    int64  `json:"waits"`
		WaitedMS number `json:"waited_ms"`
	}
	jsonKnee struct {
		Rate     number `json:"rate"`
		OffsetMS number `json:"offset_ms"`
		Broke    string `json:"broke"`
	}
	jsonPoint struct {
		OffsetMS      number `json:"offset_ms"`
		Sent          int64  `json:"sent"`
		Acked         int64  `json:"acked"`
		Errors        int64  `json:"errors"`
		Delivered     int64  `json:"delivered"`
		AckP50MS      number `json:"ack_p50_ms"`
		AckP99MS      number `json:"ack_p99_ms"`
		DeliveryP50MS number `json:"delivery_p50_ms"`
		DeliveryP99MS number `json:"delivery_p99_ms"`
	}
)

// number is a float64 that encodes NaN and infinities as null: a threshold's
// value can be either, and encoding/json refuses them.
type number float64

func (n number) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

// millis converts a duration to milliseconds, to the microsecond.
func millis(d time.Duration) number {
	return number(math.Round(float64(d)/float64(time.Microsecond)) / 1000)
}

// distributionPercentiles are the points of the JSON distribution: enough to
// redraw a percentile plot out to five nines.
var distributionPercentiles = []float64{0, 10, 20, 30, 40, 50, 60, 70, 75, 80, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.999, 100}

// JSON writes the report as one JSON object (see jsonRun for its fields).
func JSON(w io.Writer, r Run) error {
	res := r.Result
	out := jsonRun{
		ID: r.ID, Scenario: r.Scenario, Target: r.Target, Started: r.Started, DurationMS: millis(r.Duration),
		Pass: r.Pass(),
		Counts: jsonCounts{
			Sent: res.Sent, Acked: res.Acked, Failed: res.Failed, Unanswered: res.Unanswered,
			Expected: res.Expected, Delivered: res.Delivered, Replayed: res.Replayed, Lost: res.Lost,
			Unconfirmed: res.Unconfirmed, Duplicates: res.Duplicates, Reordered: res.Reordered,
			Foreign: res.Foreign, Unexpected: res.Unexpected, Misrouted: res.Misrouted,
			ConnectErrors: res.ConnectErrors, Clamped: res.Clamped,
		},
		Latency: jsonLatencies{
			Ack:      latencyJSON(res.Ack, res.AckHist),
			Delivery: latencyJSON(res.Delivery, res.DeliveryHist),
			Replayed: latencyJSON(res.ReplayedDelivery, nil),
		},
		Values:      map[string]number{},
		Thresholds:  []jsonVerdict{},
		Checks:      []jsonCheck{},
		Stages:      []jsonStage{},
		IntervalMS:  millis(res.Interval),
		Timeline:    []jsonPoint{},
		LostExample: res.LostExamples,
		AckErrors:   res.AckErrors,
		Pacing:      jsonPacing{REST: pacedJSON(r.Pacing.REST), Frames: pacedJSON(r.Pacing.Frames)},
		Generator: jsonGenerator{
			CPUSeconds:         number(r.Generator.CPUSeconds),
			LoadCores:          number(r.Generator.LoadCores),
			MaxSchedulingLagMS: millis(r.Generator.MaxSchedulingLag),
			P99SchedulingLagMS: millis(r.Generator.P99SchedulingLag),
			Saturated:          r.Generator.Saturated,
			Connections:        r.Generator.Connections,
			Goroutines:         r.Generator.Goroutines,
		},
	}
	// Empty lists and maps encode as [] and {}, not null, so readers need not
	// tell the two apart.
	if out.LostExample == nil {
		out.LostExample = []string{}
	}
	if out.AckErrors == nil {
		out.AckErrors = map[string]int64{}
	}
	for _, n := range res.AckErrors {
		out.Counts.AckErrors += n
	}
	for k, v := range res.Values() {
		out.Values[k] = number(v)
	}
	for _, v := range r.Thresholds {
		out.Thresholds = append(out.Thresholds, jsonVerdict{Text: v.Text, Got: number(v.Got), Unit: v.Unit, Pass: v.Pass})
	}
	for _, c := range r.Checks {
		figures := c.Figures
		if figures == nil {
			figures = map[string]string{}
		}
		out.Checks = append(out.Checks, jsonCheck{Name: c.Name, Pass: c.Pass, Detail: c.Detail, Figures: figures, Table: c.Table})
	}
	for _, s := range r.Stages {
		out.Stages = append(out.Stages, jsonStage{Name: s.Name, OffsetMS: millis(s.Offset)})
	}
	if k := r.Knee; k != nil {
		out.Knee = &jsonKnee{Rate: number(k.Rate), OffsetMS: millis(k.Offset), Broke: k.Broke}
	}
	for _, p := range res.Timeline {
		out.Timeline = append(out.Timeline, jsonPoint{
			OffsetMS: millis(p.Offset), Sent: p.Sent, Acked: p.Acked, Errors: p.Errors, Delivered: p.Delivered,
			AckP50MS: millis(p.AckP50), AckP99MS: millis(p.AckP99), DeliveryP50MS: millis(p.DeliveryP50), DeliveryP99MS: millis(p.DeliveryP99),
		})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func latencyJSON(l ledger.Latency, h *hdrhistogram.Histogram) jsonLatency {
	out := jsonLatency{
		Count: l.Count, MinMS: millis(l.Min), MeanMS: millis(l.Mean), P50MS: millis(l.P50), P90MS: millis(l.P90),
		P99MS: millis(l.P99), P999MS: millis(l.P999), MaxMS: millis(l.Max),
		Distribution: []jsonPercentile{},
	}
	for i, d := range percentiles(h, l, distributionPercentiles) {
		out.Distribution = append(out.Distribution, jsonPercentile{Percentile: distributionPercentiles[i], MS: millis(d)})
	}
	return out
}

// percentiles reads the latency at each percentile from a histogram in
// microseconds, bounded by the exact extremes as the summary is. It returns
// nothing for an empty or missing histogram.
func percentiles(h *hdrhistogram.Histogram, l ledger.Latency, ps []float64) []time.Duration {
	if h == nil || h.TotalCount() == 0 {
		return nil
	}
	out := make([]time.Duration, len(ps))
	for i, p := range ps {
		d := time.Duration(h.ValueAtPercentile(p)) * time.Microsecond
		if l.Count > 0 {
			d = min(max(d, l.Min), l.Max)
		}
		out[i] = d
	}
	return out
}

func pacedJSON(p Paced) jsonPaced {
	return jsonPaced{Refusals: p.Refusals, Waits: p.Waits, WaitedMS: millis(p.Waited)}
}
