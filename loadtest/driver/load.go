package driver

import (
	"context"
	"sync"
	"time"

	"github.com/parleychat/parley/loadtest/check"
	"github.com/parleychat/parley/loadtest/ledger"
	"github.com/parleychat/parley/loadtest/report"
	"github.com/parleychat/parley/loadtest/stats"
	"github.com/parleychat/parley/loadtest/truth"
	"github.com/parleychat/parley/loadtest/wait"
)

// outcome is what the load phase leaves for the report.
type outcome struct {
	marks     []report.StageMark
	checks    []report.CheckVerdict
	generator report.GeneratorStats
	truth     *truth.Interval // the servers' series over the load, for the SLI truth check
}

// load runs the plan with the crowd connected: each stage begins on time,
// the checks run beside the load, every message goes out at its intended
// time, and what is still due afterwards is drained.
func (r *run) load(ctx context.Context, c *crowd) outcome {
	load := stats.BeginLoad()
	marks := r.scheduleStages(c, load.Start())
	loadEnded := make(chan struct{})
	verdicts := check.Start(ctx, r.cfg.Checks, loadEnded, r.progress)
	stopProgress := r.showProgress(ctx)
	lag := r.dispatch(ctx, load.Start())
	drain(ctx, r.sc.Drain, r.ledger)
	close(loadEnded)
	if len(r.cfg.Checks.Names) > 0 {
		r.progress("waiting for the checks")
	}
	checks := verdicts() // the load has ended; a check still waiting for a resolve needs no more of it
	stopProgress()
	return outcome{
		marks:     marks,
		checks:    checks,
		generator: load.Generator(lag, r.counters), // while the connections are still up
	}
}

// showProgress prints a progress line every second, unless the run is
// quiet, until the returned function is called.
func (r *run) showProgress(ctx context.Context) (stop func()) {
	if r.cfg.Quiet {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { stats.PrintProgress(ctx, r.stderr, r.ledger, r.counters, r.started) })
	return func() { cancel(); wg.Wait() }
}

// drain waits for what is still due after the last send: until every
// send is answered and every expected delivery has arrived, or the
// scenario's drain time is up. An overloaded server can be many seconds
// behind; what has not arrived by the end of the drain counts as lost.
func drain(ctx context.Context, d time.Duration, l *ledger.Ledger) {
	_, _ = wait.Until(ctx, 50*time.Millisecond, time.Now().Add(d), func() (bool, error) {
		p := l.Snapshot(time.Now())
		return p.InFlight == 0 && p.Awaiting == 0, nil
	})
}
