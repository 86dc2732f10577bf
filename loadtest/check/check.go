// Package check runs the platform checks beside a load: that an SLO's
// alert fires and resolves when a fault breaks it (slo-alert), and that
// the deployment scales out under the load without paging (autoscale).
// Each ends in a verdict for the report.
package check

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/parleychat/parley/loadtest/kube"
	"github.com/parleychat/parley/loadtest/report"
)

// The checks, by the names -check takes.
const (
	SLOAlert  = "slo-alert"
	Autoscale = "autoscale"
)

// Config is what the platform checks need besides the run.
type Config struct {
	Names        []string // the checks to run: SLOAlert, Autoscale
	Admins       []string // the replicas' admin URLs, for the fault API
	AdminToken   string
	Alertmanager string
	Slack        string // the Slack receiver's base URL (its /messages), optional
	Alert        string // the alert that must fire, with Severity
	Severity     string
	Fault        string
	FaultAfter   time.Duration // into the load
	Timeout      time.Duration // for each step of a check
	Prometheus   string
	Replicas     string           // PromQL: how many replicas are ready
	Pages        string           // PromQL: pages firing, to judge whether the SLO held
	Deployment   *kube.Deployment // when set, the replicas come from its status instead of Replicas
}

// pollEvery is how often the checks look.
const pollEvery = time.Second

// requestTimeout bounds every request of the checks.
const requestTimeout = 10 * time.Second

// checker runs checks with its HTTP client and poll interval.
type checker struct {
	Config
	http *http.Client
	poll time.Duration
}

// Start starts the checks c names beside the load, and returns a function
// that waits for their verdicts. loadEnded closes when the load ends;
// progress reports each verdict as it comes.
func Start(ctx context.Context, c Config, loadEnded <-chan struct{}, progress func(string, ...any)) func() []report.CheckVerdict {
	k := &checker{Config: c, http: &http.Client{Timeout: requestTimeout}, poll: pollEvery}
	out := make([]report.CheckVerdict, len(c.Names))
	var wg sync.WaitGroup
	for i, name := range c.Names {
		wg.Go(func() {
			switch name {
			case SLOAlert:
				out[i] = k.sloAlert(ctx)
			case Autoscale:
				out[i] = k.autoscale(ctx, loadEnded)
			}
			progress("check %s: %s", name, out[i].Detail)
		})
	}
	return func() []report.CheckVerdict { wg.Wait(); return out }
}
