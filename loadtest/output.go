package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/parleychat/parley/loadtest/ledger"
	"github.com/parleychat/parley/loadtest/report"
)

// lagRecorder keeps how late the scheduler dispatched each send: the
// generator's own delay, which must stay small for its figures to be the
// server's.
type lagRecorder struct {
	mu   sync.Mutex
	hist *hdrhistogram.Histogram // microseconds
}

func newLagRecorder() *lagRecorder {
	return &lagRecorder{hist: hdrhistogram.New(1, int64(time.Hour/time.Microsecond), 3)}
}

func (r *lagRecorder) record(d time.Duration) {
	r.mu.Lock()
	_ = r.hist.RecordValue(max(int64(d/time.Microsecond), 0))
	r.mu.Unlock()
}

// saturationLag is the scheduling lag at p99 above which the run warns that
// the generator, not the server, set the pace.
const saturationLag = 10 * time.Millisecond

// generatorStats sums up the generator's own costs; loadStart and
// cpuAtLoadStart mark where the load began, to tell the load's CPU from the
// setup's (sign-ups and connections cost a burst the load does not).
func generatorStats(lag *lagRecorder, stats *driverStats, loadStart time.Time, cpuAtLoadStart float64) report.GeneratorStats {
	cpu := cpuSeconds()
	var cores float64
	if d := time.Since(loadStart).Seconds(); d > 0 {
		cores = (cpu - cpuAtLoadStart) / d
	}
	lag.mu.Lock()
	p99 := time.Duration(lag.hist.ValueAtQuantile(99)) * time.Microsecond
	maxLag := time.Duration(lag.hist.Max()) * time.Microsecond
	lag.mu.Unlock()
	return report.GeneratorStats{
		CPUSeconds:       cpu,
		LoadCores:        cores,
		MaxSchedulingLag: maxLag,
		P99SchedulingLag: p99,
		Saturated:        p99 > saturationLag || stats.outboxFull.Load() > 0,
		Connections:      int(stats.connections.Load()),
		Goroutines:       runtime.NumGoroutine(),
	}
}

// cpuSeconds is the CPU time this process has used, user and system.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// reportProgress prints a progress line every second until done.
func reportProgress(done <-chan struct{}, l *ledger.Ledger, stats *driverStats, started time.Time, quiet bool, w io.Writer) {
	if quiet {
		return
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case now := <-tick.C:
			fmt.Fprintln(w, report.ProgressLine(l.Snapshot(now), int(stats.connections.Load()), now.Sub(started)))
		}
	}
}

// writeReports prints the final table and writes the JSON and HTML
// reports the flags ask for.
func writeReports(cfg config, run report.Run, stdout io.Writer) error {
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
	if err := write(cfg.jsonOut, report.JSON); err != nil {
		return err
	}
	return write(cfg.htmlOut, report.HTML)
}
