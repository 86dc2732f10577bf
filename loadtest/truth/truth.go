// Package truth checks that the servers' SLIs tell the truth about a run:
// at the end of a load against targets that served only that run, it sets
// what the virtual users saw (acks, deliveries, delivery latencies) beside
// what the servers' own series counted over the same interval, read from
// each target's /metrics before and after the load, and fails the run
// where the two disagree beyond a stated tolerance. An instrumentation bug
// then fails a test instead of hiding in a dashboard.
//
// The two clocks differ by design. A server times a delivery from the
// message's arrival at the server that stored it to its write on the
// recipient's socket; the generator from the message's intended send time
// to its receipt. Each delivery's generator latency is therefore its
// server latency plus a wait the server does not see (the generator's
// lag, the network both ways, reading the frame; across hosts, the
// replicas' clock difference too), and:
//
//   - the users' share of deliveries under a bound can never be above
//     the servers': more, at any bound, is a server that reports
//     deliveries slower than they were;
//   - the servers' share under a bound b can be above the users' share
//     under b, but not above their share under b plus the longest wait
//     the servers do not see. ClockAllowance is that wait, checked at the
//     bounds that matter (the SLO's): a server whose SLI leaves out more
//     of a user's wait fails.
//
// Both hold up to ShareTolerance, for the generator's histogram
// resolution and the few deliveries one side counts and the other does
// not (or that waited longer than the allowance).
//
// Counts differ the same one-sided way: a server counts an ack or a
// delivery before the frame reaches the user, so it may count frames a
// broken connection never delivered, but never fewer than the users read.
package truth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Name is the check's name in the report.
const Name = "sli-truth"

// Config is what the check needs: where the servers' series are and how
// far apart the two sides may be.
type Config struct {
	// Metrics lists every target's admin /metrics URL; none means no check.
	Metrics []string
	// CountTolerance is how many more acks and deliveries the servers may
	// count than the users read, as a share of the users' count.
	CountTolerance float64
	// ShareTolerance is how far apart the shares may be beyond what the
	// clocks explain (0.01 is one percentage point).
	ShareTolerance float64
	// ClockAllowance is the longest wait of a user's that the servers'
	// clock may leave out.
	ClockAllowance time.Duration
	// Bounds are bucket bounds of the servers' delivery histogram, in
	// seconds, where the servers' share is held against the users' share
	// under the bound plus ClockAllowance: the SLO's threshold at least.
	Bounds []float64
	// Quiesce bounds the wait, after the load, for the servers' counts to
	// stop changing.
	Quiesce time.Duration
}

// Seen is what the users saw over the load.
type Seen struct {
	// Acked counts the ack frames the users read, every copy.
	Acked int64
	// Deliveries counts the live message frames the users read, every
	// copy: history replayed after a reconnect is left out, as the
	// servers leave it out.
	Deliveries int64
	// Latency holds every live delivery's latency in microseconds, from
	// the intended send time to the receipt.
	Latency *hdrhistogram.Histogram
}

// Probe is the check under way: the servers' series before the load.
type Probe struct {
	cfg    Config
	http   *http.Client
	before []Sample
	poll   time.Duration
}

// requestTimeout bounds each scrape.
const requestTimeout = 10 * time.Second

// settlePoll is how often the servers are read while their counts settle.
const settlePoll = 100 * time.Millisecond

// Begin reads every target's series before the load. An error means the
// check cannot be made (a target unreachable or not a Parley replica, a
// bound its histogram lacks), and the run should not start.
func Begin(ctx context.Context, cfg Config) (*Probe, error) {
	p := &Probe{cfg: cfg, http: &http.Client{Timeout: requestTimeout}, poll: settlePoll}
	before, err := p.scrapeAll(ctx)
	if err != nil {
		return nil, err
	}
	for i, s := range before {
		bounds := s.bounds()
		for _, b := range cfg.Bounds {
			if !slices.Contains(bounds, b) {
				return nil, fmt.Errorf("%s: %v s is not a bucket bound of %s (its bounds: %s)", cfg.Metrics[i], b, deliveryHistogram, formatBounds(bounds))
			}
		}
	}
	p.before = before
	return p, nil
}

// Interval is the servers' side of the comparison: each target's series
// before and after the load, or why they could not be read after it.
type Interval struct {
	Targets       []string
	Before, After []Sample
	Err           error
}

// End waits until the servers' counts stop changing (messages still on
// their way when the load ended are counted by then, and a target still
// counting after Quiesce is serving someone else too), and returns the
// interval the load covered.
func (p *Probe) End(ctx context.Context) Interval {
	iv := Interval{Targets: p.cfg.Metrics, Before: p.before}
	deadline := time.Now().Add(p.cfg.Quiesce)
	var last []Sample
	for reads := 1; ; reads++ {
		now, err := p.scrapeAll(ctx)
		switch {
		case err == nil && last != nil && sameCounts(last, now):
			iv.After = now
			return iv
		case err == nil:
			last = now
		case ctx.Err() != nil:
			iv.Err = err
			return iv
		}
		if reads >= 2 && time.Now().Add(p.poll).After(deadline) {
			if err == nil {
				err = fmt.Errorf("the servers' counts were still changing %v after the load: do the targets serve other traffic?", p.cfg.Quiesce)
			}
			iv.Err = err
			return iv
		}
		select {
		case <-ctx.Done():
			iv.Err = ctx.Err()
			return iv
		case <-time.After(p.poll):
		}
	}
}

// scrapeAll reads every target, in order.
func (p *Probe) scrapeAll(ctx context.Context) ([]Sample, error) {
	out := make([]Sample, len(p.cfg.Metrics))
	var errs []error
	for i, u := range p.cfg.Metrics {
		s, err := scrape(ctx, p.http, u)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u, err))
		}
		out[i] = s
	}
	return out, errors.Join(errs...)
}

// sameCounts reports whether two reads of the targets counted the same
// acks and deliveries.
func sameCounts(a, b []Sample) bool {
	for i := range a {
		if a[i].Acked != b[i].Acked || a[i].Delivered != b[i].Delivered {
			return false
		}
	}
	return true
}

// formatBound shows a bucket bound in seconds as a duration: 2.5ms, 250ms, 1s.
func formatBound(b float64) string {
	return time.Duration(b * float64(time.Second)).Round(time.Microsecond).String()
}

func formatBounds(bounds []float64) string {
	parts := make([]string, len(bounds))
	for i, b := range bounds {
		parts[i] = strconv.FormatFloat(b, 'g', -1, 64)
	}
	return strings.Join(parts, ", ")
}
