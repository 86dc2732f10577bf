// Package driver runs a scenario against a Parley deployment: it sets up
// the scenario's users and rooms, connects the users, sends each message
// of the plan at its intended time whatever the server does (an open
// model), drains what is still due, and reports on it all.
package driver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleychat/parley/loadtest/ledger"
	"github.com/parleychat/parley/loadtest/scenario"
	"github.com/parleychat/parley/loadtest/schedule"
	"github.com/parleychat/parley/loadtest/stats"
	"github.com/parleychat/parley/loadtest/truth"
	"github.com/parleychat/parley/loadtest/wire"
)

// ErrThresholds is the run's verdict when a threshold or check failed; the
// report has already said which.
var ErrThresholds = errors.New("thresholds broken")

// run is one run of a scenario: what its phases share.
type run struct {
	cfg      Config
	sc       *scenario.Scenario
	plan     *schedule.Plan
	stderr   io.Writer
	http     *http.Client
	apis     []*wire.Client // one per target
	ws       *websocket.Dialer
	started  time.Time
	ledger   *ledger.Ledger
	counters *stats.Counters
	rooms    []*room
	users    []*vuser // every user, by index
	active   []*vuser // users in at least one room: the others have nothing to do
}

// Drive runs the scenario cfg names against cfg.Targets and reports on it
// to stdout and the files cfg names, with progress on stderr. It returns
// ErrThresholds when the run was made and a threshold or check failed.
func Drive(ctx context.Context, cfg Config, stdout, stderr io.Writer) error {
	r, err := prepare(cfg, stderr)
	if err != nil {
		return err
	}
	defer r.http.CloseIdleConnections()
	probe, err := r.beginTruth(ctx)
	if err != nil {
		return err
	}
	if err := r.setUp(ctx); err != nil {
		return err
	}
	if cfg.MetricsAddr != "" {
		stop, err := r.serveMetrics()
		if err != nil {
			return err
		}
		defer stop()
	}
	crowd, err := r.connect(ctx)
	if err != nil {
		return err
	}
	defer crowd.stop()
	load := r.load(ctx, crowd)
	if probe != nil {
		r.progress("%s: waiting for the servers' counts to settle", truth.Name)
		iv := probe.End(ctx)
		load.truth = &iv
	}
	crowd.stop()
	return r.report(ctx, load, stdout)
}

// beginTruth reads the servers' series before anything is sent, when the
// SLI truth check is asked for (nil otherwise), so that a target that
// cannot be read stops the run before it starts.
func (r *run) beginTruth(ctx context.Context) (*truth.Probe, error) {
	if len(r.cfg.Truth.Metrics) == 0 {
		return nil, nil
	}
	p, err := truth.Begin(ctx, r.cfg.Truth)
	if err != nil {
		return nil, fmt.Errorf("-sli-check: %w", err)
	}
	return p, nil
}

// progress tells the operator what the run is doing, unless it is quiet.
func (r *run) progress(format string, args ...any) {
	if !r.cfg.Quiet {
		fmt.Fprintf(r.stderr, format+"\n", args...)
	}
}

// serveMetrics serves the generator's series until the returned function
// is called.
func (r *run) serveMetrics() (stop func(), err error) {
	addr, stop, err := stats.ServeMetrics(r.cfg.MetricsAddr, r.ledger, r.counters)
	if err != nil {
		return nil, fmt.Errorf("-metrics-addr: %w", err)
	}
	r.progress("metrics at http://%s/metrics", addr)
	return stop, nil
}
