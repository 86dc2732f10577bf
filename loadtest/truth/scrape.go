package truth

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"slices"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The servers' series the check reads: the ack SLI's counter and the
// delivery SLI's histogram (docs/telemetry.md).
const (
	sendsCounter      = "parley_sends_total"
	deliveryHistogram = "parley_delivery_latency_seconds"
	startTime         = "process_start_time_seconds"
)

// transport is the sends counter's transport label for the generator's
// sends: it sends over the WebSocket only.
const transport = "ws"

// Sample is what one read of a target's /metrics says, of the series the
// check compares.
type Sample struct {
	// Started is the process's start time (process_start_time_seconds),
	// 0 where the target does not export it: a change between two reads
	// is a restart, even once the counters have climbed past where they
	// were.
	Started   float64
	Acked     float64 // parley_sends_total{transport="ws",outcome="acked"}
	Delivered float64 // parley_delivery_latency_seconds_count
	// Buckets is the delivery histogram, cumulative, by rising bound,
	// +Inf last.
	Buckets []Bucket
}

// Bucket is one bucket of a histogram: how many observations were at
// most Le seconds.
type Bucket struct {
	Le    float64
	Count float64
}

// bounds are the sample's finite bucket bounds.
func (s Sample) bounds() []float64 {
	var out []float64
	for _, b := range s.Buckets {
		if !math.IsInf(b.Le, 1) {
			out = append(out, b.Le)
		}
	}
	return out
}

// maxBody bounds what a scrape reads: a replica's page is tens of
// kilobytes.
const maxBody = 16 << 20

// scrape reads the series from a target's /metrics in Prometheus's text
// format, which it asks for (the admin listener serves it without a
// token).
func scrape(ctx context.Context, client *http.Client, url string) (Sample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Sample{}, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := client.Do(req)
	if err != nil {
		return Sample{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Sample{}, fmt.Errorf("got %s, want 200 and the text format", resp.Status)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/plain" {
		return Sample{}, fmt.Errorf("got Content-Type %q, want text/plain: is this a Prometheus /metrics?", resp.Header.Get("Content-Type"))
	}
	return parse(io.LimitReader(resp.Body, maxBody))
}

// parse reads the series the check needs from a page in the text format.
// A missing series is an error: the target is not a Parley replica, or
// one too old to count what the check compares.
func parse(r io.Reader) (Sample, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return Sample{}, fmt.Errorf("not the Prometheus text format: %w", err)
	}
	var s Sample
	var errs []error
	if f := families[startTime]; f != nil && len(f.GetMetric()) > 0 {
		s.Started = f.GetMetric()[0].GetGauge().GetValue()
	}
	if s.Acked, err = acked(families[sendsCounter]); err != nil {
		errs = append(errs, err)
	}
	if s.Delivered, s.Buckets, err = histogram(families[deliveryHistogram]); err != nil {
		errs = append(errs, err)
	}
	return s, errors.Join(errs...)
}

// acked sums the sends counter's acked series of the generator's
// transport.
func acked(f *dto.MetricFamily) (float64, error) {
	want := fmt.Sprintf(`no %s{transport=%q,outcome="acked"} series`, sendsCounter, transport)
	if f == nil || f.GetType() != dto.MetricType_COUNTER {
		return 0, errors.New(want)
	}
	var sum float64
	found := false
	for _, m := range f.GetMetric() {
		if label(m, "transport") == transport && label(m, "outcome") == "acked" {
			sum += m.GetCounter().GetValue()
			found = true
		}
	}
	if !found {
		return 0, errors.New(want)
	}
	return sum, nil
}

// histogram sums the delivery histogram's series (there is one today),
// which must share their bounds.
func histogram(f *dto.MetricFamily) (count float64, buckets []Bucket, err error) {
	if f == nil || f.GetType() != dto.MetricType_HISTOGRAM {
		return 0, nil, fmt.Errorf("no %s histogram", deliveryHistogram)
	}
	for i, m := range f.GetMetric() {
		h := m.GetHistogram()
		count += orFloat(float64(h.GetSampleCount()), h.SampleCountFloat)
		for j, b := range h.GetBucket() {
			n := orFloat(float64(b.GetCumulativeCount()), b.CumulativeCountFloat)
			if i == 0 {
				buckets = append(buckets, Bucket{Le: b.GetUpperBound(), Count: n})
				continue
			}
			if j >= len(buckets) || buckets[j].Le != b.GetUpperBound() {
				return 0, nil, fmt.Errorf("%s: series with different bucket bounds", deliveryHistogram)
			}
			buckets[j].Count += n
		}
	}
	if len(buckets) == 0 {
		return 0, nil, fmt.Errorf("%s has no buckets", deliveryHistogram)
	}
	slices.SortFunc(buckets, func(a, b Bucket) int { return cmp.Compare(a.Le, b.Le) })
	if !math.IsInf(buckets[len(buckets)-1].Le, 1) {
		// The text format may leave +Inf out; it is the count.
		buckets = append(buckets, Bucket{Le: math.Inf(1), Count: count})
	}
	return count, buckets, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// orFloat is a count the text parser kept as a float, if it did.
func orFloat(n float64, f *float64) float64 {
	if f != nil {
		return *f
	}
	return n
}
