package check

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/parleychat/parley/loadtest/report"
	"github.com/parleychat/parley/loadtest/wait"
)

// autoscale watches the number of ready replicas (from the Kubernetes API
// with a Deployment, else a Prometheus query) from the start of the load,
// and passes when it grows within the timeout and no page fired. Pages are
// watched (when Prometheus is given) until the load ends, not only until
// the scale-up: new replicas that take connections and then fail would
// break the SLO after the replica count looked fine.
func (k *checker) autoscale(ctx context.Context, loadEnded <-chan struct{}) report.CheckVerdict {
	v := report.CheckVerdict{Name: Autoscale, Figures: map[string]string{}}
	start := time.Now()
	before, err := k.replicas(ctx)
	if err != nil {
		v.Detail = "reading the replica count: " + err.Error()
		return v
	}
	v.Figures["replicas_before"] = strconv.Itoa(before)
	paged := false
	after := before
	took, err := wait.Until(ctx, k.poll, start.Add(k.Timeout), func() (bool, error) {
		paged = paged || k.paging(ctx)
		n, err := k.replicas(ctx)
		after = n
		return err == nil && n > before, err
	})
	v.Figures["replicas_after"] = strconv.Itoa(after)
	if err != nil {
		v.Figures["slo_held"] = strconv.FormatBool(!paged)
		v.Detail = fmt.Sprintf("no scale-up within %v of the load's start (replicas stayed at %d): %v", k.Timeout, before, err)
		return v
	}
	v.Figures["time_to_scale"] = took.Round(time.Second).String()
	paged = paged || k.pagedBefore(ctx, loadEnded)
	v.Figures["slo_held"] = strconv.FormatBool(!paged)
	v.Pass = !paged
	v.Detail = fmt.Sprintf("replicas went from %d to %d, ready %s after the load started; a page fired during the load: %v",
		before, after, v.Figures["time_to_scale"], paged)
	return v
}

// replicas is how many replicas are ready now.
func (k *checker) replicas(ctx context.Context) (int, error) {
	if k.Deployment != nil {
		return k.Deployment.ReadyReplicas(ctx)
	}
	n, err := k.promScalar(ctx, k.Replicas)
	return int(n), err
}

// paging reports whether Prometheus shows a page firing now; without
// Prometheus nothing is known to page.
func (k *checker) paging(ctx context.Context) bool {
	if k.Prometheus == "" {
		return false
	}
	// count() of no firing page is an empty answer, not an error.
	n, err := k.promScalar(ctx, k.Pages)
	return err == nil && n > 0
}

// pagedBefore watches for a page until the load ends, and reports whether
// one fired. Without Prometheus there is nothing to watch.
func (k *checker) pagedBefore(ctx context.Context, loadEnded <-chan struct{}) bool {
	if k.Prometheus == "" {
		return false
	}
	tick := time.NewTicker(k.poll)
	defer tick.Stop()
	for {
		select {
		case <-loadEnded:
			return false
		case <-ctx.Done():
			return false
		case <-tick.C:
			if k.paging(ctx) {
				return true
			}
		}
	}
}
