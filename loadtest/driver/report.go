package driver

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"time"

	"github.com/parleychat/parley/loadtest/ledger"
	"github.com/parleychat/parley/loadtest/report"
	"github.com/parleychat/parley/loadtest/scenario"
	"github.com/parleychat/parley/loadtest/truth"
)

// report judges the run, prints the table and writes the report files.
func (r *run) report(ctx context.Context, o outcome, stdout io.Writer) error {
	res := r.ledger.Finish(time.Now())
	checks := o.checks
	if o.truth != nil {
		seen := truth.Seen{Acked: r.counters.AcksRead.Load(), Deliveries: r.counters.LiveMessagesRead.Load(), Latency: res.DeliveryHist}
		v := truth.Compare(r.cfg.Truth, *o.truth, seen).Verdict()
		r.progress("check %s: %s", v.Name, v.Detail)
		checks = append(checks, v)
	}
	out := report.Run{
		ID: r.cfg.RunID, Scenario: r.sc.Name, Target: strings.Join(r.cfg.Targets, ","), Started: r.started, Duration: time.Since(r.started),
		Result: res, Stages: o.marks, Checks: checks, Generator: o.generator, Pacing: r.pacing(),
		Thresholds: thresholds(r.sc, res), Knee: knee(r.sc, res),
	}
	if err := writeReports(r.cfg, out, stdout); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return errors.New("interrupted: the figures above cover only part of the run")
	}
	if !out.Pass() {
		return ErrThresholds
	}
	return nil
}

// pacing sums up how much the servers' rate limits held the run back: its
// REST calls (over every target) and its users' frames.
func (r *run) pacing() report.Pacing {
	var p report.Pacing
	for _, api := range r.apis {
		w := api.Paced()
		p.REST.Refusals += w.Refusals
		p.REST.Waits += w.Waits
		p.REST.Waited += w.Waited
	}
	if r.counters != nil {
		f := r.counters.FramesPaced.Load()
		p.Frames = report.Paced{Refusals: f.Refusals, Waits: f.Waits, Waited: f.Waited}
	}
	return p
}

// thresholds judges the result against each of the scenario's thresholds.
func thresholds(sc *scenario.Scenario, res ledger.Result) []report.Verdict {
	values := res.Values()
	var out []report.Verdict
	for _, t := range sc.Thresholds {
		got := values[t.Metric]
		out = append(out, report.Verdict{Text: t.Text, Got: got, Pass: t.Holds(got)})
	}
	return out
}

// writeReports prints the final table and writes the JSON and HTML
// reports cfg asks for.
func writeReports(cfg Config, run report.Run, stdout io.Writer) error {
	if err := report.Table(stdout, run); err != nil {
		return err
	}
	write := func(path string, render func(io.Writer, report.Run) error) error {
		if path == "" {
			return nil
		}
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := render(f, run); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	if err := write(cfg.JSONOut, report.JSON); err != nil {
		return err
	}
	return write(cfg.HTMLOut, report.HTML)
}
