// Command bench measures Parley side by side with a bare hub
// (bench/baseline) under the same load generator and workload, and prints
// one table: server CPU per 1,000 deliveries and delivery latency in a
// fan-out, the knee (the highest rate that stays healthy), and RSS per
// idle connection, each the median of several runs with its ratio to the
// baseline's median, and below it the spread of each figure over the runs.
// The runs are interleaved (every target once, then every target again),
// so that a slow spell of a shared machine falls on all targets alike.
//
//	go run ./bench                                  # every shape, every target
//	go run ./bench -shapes fanout -duration 5s      # a quick look
//
// It builds the server, the baseline and the load generator, starts a
// fresh server for every run (pinned to CPU 0, the generator to CPU 1,
// where taskset and two CPUs are there), and reads the server's CPU time
// and RSS from /proc, so it runs on Linux. docs/performance.md says what
// each figure means.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
}

// options is what the command line says.
type options struct {
	shapes, targets []string
	conns           int // fan-out and knee: connections, one user each, in rooms of 10
	rate            float64
	duration        time.Duration
	kneeRates       []float64
	kneeDuration    time.Duration
	idleConns       int
	idleRoom        int
	hold            time.Duration
	runs, kneeRuns  int // rounds of each shape: fanout and idle, knee
	databaseURL     string
	jsonOut         string
	logDir          string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	var shapes, targets, rates string
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&shapes, "shapes", "fanout,knee,idle", "shapes to run, comma-separated: fanout, knee, idle")
	fs.StringVar(&targets, "targets", defaultTargets, "targets to measure, comma-separated, the baseline first")
	fs.IntVar(&o.conns, "conns", 2000, "fanout and knee: connections, one user each, in rooms of 10")
	fs.Float64Var(&o.rate, "rate", 2000, "fanout: messages a second (each delivered to 10)")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "fanout: how long the rate is held")
	fs.StringVar(&rates, "knee-rates", "2000,4000,8000,16000", "knee: rates to try, rising, comma-separated")
	fs.DurationVar(&o.kneeDuration, "knee-duration", 15*time.Second, "knee: how long each rate is held")
	fs.IntVar(&o.idleConns, "idle-conns", 5000, "idle: connections, one user each")
	fs.IntVar(&o.idleRoom, "idle-room", 100, "idle: members of each room")
	fs.DurationVar(&o.hold, "hold", 2*time.Minute, "idle: how long the connections are held (two minutes lets the Go runtime's periodic collection and scavenging run)")
	fs.IntVar(&o.runs, "runs", 3, "fanout and idle: runs of each target, interleaved; the table gives each figure's median")
	fs.IntVar(&o.kneeRuns, "knee-runs", 1, "knee: climbs of each target, interleaved; the table gives the median knee")
	fs.StringVar(&o.databaseURL, "database-url", "", "also measure the knee of Parley on this PostgreSQL (target parley-postgres)")
	fs.StringVar(&o.jsonOut, "json", "", "write the raw figures as JSON to this file")
	fs.StringVar(&o.logDir, "logs", "", "keep every server's and load generator's output in this folder (default: a temporary folder, removed)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var errs []error
	o.shapes = splitList(shapes)
	for _, s := range o.shapes {
		if s != shapeFanout && s != shapeKnee && s != shapeIdle {
			errs = append(errs, fmt.Errorf("-shapes: unknown shape %q", s))
		}
	}
	if o.targets = splitList(targets); len(o.targets) == 0 && o.databaseURL == "" {
		errs = append(errs, errors.New("-targets: name at least one"))
	}
	for _, raw := range splitList(rates) {
		r, err := strconv.ParseFloat(raw, 64)
		if err != nil || r <= 0 || (len(o.kneeRates) > 0 && r <= o.kneeRates[len(o.kneeRates)-1]) {
			errs = append(errs, fmt.Errorf("-knee-rates: %q is not a positive rate above the one before", raw))
			continue
		}
		o.kneeRates = append(o.kneeRates, r)
	}
	if o.conns < 10 || o.conns%10 != 0 {
		errs = append(errs, fmt.Errorf("-conns must be a multiple of 10 (rooms of 10), got %d", o.conns))
	}
	if o.idleRoom < 1 || o.idleConns < o.idleRoom || o.idleConns%o.idleRoom != 0 {
		errs = append(errs, fmt.Errorf("-idle-conns (%d) must be a multiple of -idle-room (%d)", o.idleConns, o.idleRoom))
	}
	for name, d := range map[string]time.Duration{"-duration": o.duration, "-knee-duration": o.kneeDuration, "-hold": o.hold} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %v", name, d))
		}
	}
	for name, n := range map[string]int{"-runs": o.runs, "-knee-runs": o.kneeRuns} {
		if n < 1 {
			errs = append(errs, fmt.Errorf("%s must be at least 1, got %d", name, n))
		}
	}
	if o.rate <= 0 {
		errs = append(errs, fmt.Errorf("-rate must be positive, got %v", o.rate))
	}
	return o, errors.Join(errs...)
}

// rounds is how many times each target runs shape.
func (o options) rounds(shape string) int {
	if shape == shapeKnee {
		return o.kneeRuns
	}
	return o.runs
}

func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// binaries are the programs the runner built.
type binaries struct{ parley, baseline, loadtest string }

// runner is one comparison: what its runs share.
type runner struct {
	opts              options
	bins              binaries
	sink              *sink
	serverCPU, genCPU string // taskset CPU lists; empty when not pinned
	workDir, logDir   string
	stderr            io.Writer
}

func (r *runner) progress(format string, args ...any) { fmt.Fprintf(r.stderr, format+"\n", args...) }

// report is the JSON output.
type report struct {
	When    time.Time `json:"when"`
	CPUs    int       `json:"cpus"`
	Pinned  bool      `json:"pinned"`
	Options struct {
		Shapes       []string  `json:"shapes"`
		Conns        int       `json:"conns"`
		Rate         float64   `json:"rate"`
		Duration     string    `json:"duration"`
		KneeRates    []float64 `json:"knee_rates"`
		KneeDuration string    `json:"knee_duration"`
		IdleConns    int       `json:"idle_conns"`
		IdleRoom     int       `json:"idle_room"`
		Hold         string    `json:"hold"`
		Runs         int       `json:"runs"`
		KneeRuns     int       `json:"knee_runs"`
	} `json:"options"`
	Targets []figures `json:"targets"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "parley-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	r := &runner{opts: o, workDir: work, logDir: o.logDir, stderr: stderr}
	if r.logDir == "" {
		r.logDir = work
	} else if err := os.MkdirAll(r.logDir, 0o755); err != nil {
		return err
	}
	if r.sink, err = startSink(); err != nil {
		return err
	}
	defer r.sink.close()
	targets, err := targetsFor(o.targets, r.sink.url, o.databaseURL)
	if err != nil {
		return err
	}
	pinning := "not pinned (taskset or a second CPU is missing): server and load generator share the CPUs"
	if _, err := exec.LookPath("taskset"); err == nil && runtime.NumCPU() >= 2 {
		r.serverCPU, r.genCPU = "0", "1"
		pinning = "server pinned to CPU 0, load generator to CPU 1"
	}
	r.progress("building the server, the baseline and the load generator")
	if r.bins, err = build(ctx, work); err != nil {
		return err
	}

	rep := report{When: time.Now().UTC(), CPUs: runtime.NumCPU(), Pinned: r.serverCPU != ""}
	rep.Options.Shapes, rep.Options.Conns, rep.Options.Rate, rep.Options.Duration = o.shapes, o.conns, o.rate, o.duration.String()
	rep.Options.KneeRates, rep.Options.KneeDuration = o.kneeRates, o.kneeDuration.String()
	rep.Options.IdleConns, rep.Options.IdleRoom, rep.Options.Hold = o.idleConns, o.idleRoom, o.hold.String()
	rep.Options.Runs, rep.Options.KneeRuns = o.runs, o.kneeRuns
	for _, t := range targets {
		rep.Targets = append(rep.Targets, figures{Target: t.name})
	}
	// Round by round, every target in turn: a slow spell of the machine
	// then touches one run of each target rather than every run of one.
	for _, shape := range o.shapes {
		n := o.rounds(shape)
		for round := 1; round <= n; round++ {
			for i, t := range targets {
				if !t.runs(shape) {
					continue
				}
				r.progress("%s, run %d of %d: %s", shape, round, n, t.name)
				f := &rep.Targets[i]
				switch shape {
				case shapeFanout:
					err = appendRun(ctx, &f.Fanout, r.fanout, t, round)
				case shapeKnee:
					err = appendRun(ctx, &f.Knee, r.knee, t, round)
				case shapeIdle:
					err = appendRun(ctx, &f.Idle, r.idle, t, round)
				}
				if err != nil {
					return fmt.Errorf("%s run %d on %s: %w", shape, round, t.name, err)
				}
			}
		}
	}
	summarise(rep.Targets, baselineName)

	fmt.Fprintf(stdout, "%d CPUs; %s\n", rep.CPUs, pinning)
	fmt.Fprintf(stdout, "medians of %s, the targets interleaved; ratios are to the baseline's median\n", runCounts(o))
	if err := writeTables(stdout, rep.Targets); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	writeNotes(stdout, rep.Targets)
	if o.jsonOut != "" {
		raw, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.jsonOut, append(raw, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// appendRun runs one round of a shape on t and adds its figures to runs.
func appendRun[R any](ctx context.Context, runs *[]*R, measure func(context.Context, target, int) (*R, error), t target, round int) error {
	res, err := measure(ctx, t, round)
	if err != nil {
		return err
	}
	*runs = append(*runs, res)
	return nil
}

// runCounts says how many runs each shape asked for: "3 runs" when they
// agree, "3 runs (knee 1)" when they do not.
func runCounts(o options) string {
	s := plural(o.runs, "run")
	if slices.Contains(o.shapes, shapeKnee) && o.kneeRuns != o.runs {
		if !slices.Contains(o.shapes, shapeFanout) && !slices.Contains(o.shapes, shapeIdle) {
			return plural(o.kneeRuns, "run")
		}
		s += fmt.Sprintf(" (knee %d)", o.kneeRuns)
	}
	return s
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// writeNotes prints, below the tables, what a reader needs to trust them:
// run by run, the deliveries and losses behind the fan-out, the idle
// connections counted, and any run whose load generator could not keep
// up.
func writeNotes(w io.Writer, rows []figures) {
	for _, f := range rows {
		for i, r := range f.Fanout {
			fmt.Fprintf(w, "%s fanout run %d: %d of %d deliveries, %d lost, %d unconfirmed, %d sends failed; %.2f CPU s over %.0f s; %d trace exports\n",
				f.Target, i+1, r.Deliveries, r.Expected, r.Lost, r.Unconfirmed, r.SendsFailed, r.CPUSeconds, r.WindowSeconds, r.TraceExports)
			if r.GeneratorSaturated {
				fmt.Fprintf(w, "  warning: the load generator was saturated: left out of the medians (its CPU per delivery and latencies are not the server's)\n")
			}
		}
		for i, r := range f.Idle {
			g := ""
			if r.Goroutines > 0 {
				g = fmt.Sprintf(", %d goroutines", r.Goroutines)
			}
			fmt.Fprintf(w, "%s idle run %d: %d connections, RSS %d KiB -> %d KiB over the setup and a %.0f s hold%s\n",
				f.Target, i+1, r.Connections, r.RSSBefore, r.RSSAfter, r.HoldSeconds, g)
		}
		for i, r := range f.Knee {
			for _, s := range r.Steps {
				if s.Saturated {
					fmt.Fprintf(w, "  warning: %s knee run %d at %g msg/s: the load generator was saturated\n", f.Target, i+1, s.Rate)
				}
			}
		}
	}
}

// build builds the three programs into dir, from the module's root.
func build(ctx context.Context, dir string) (binaries, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	root := filepath.Dir(strings.TrimSpace(string(out)))
	if err != nil || root == "." || root == "" {
		return binaries{}, fmt.Errorf("finding the module's root (go env GOMOD): %w", err)
	}
	b := binaries{parley: filepath.Join(dir, "parley"), baseline: filepath.Join(dir, "baseline"), loadtest: filepath.Join(dir, "loadtest")}
	for bin, pkg := range map[string]string{b.parley: "./server", b.baseline: "./bench/baseline", b.loadtest: "./loadtest"} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return binaries{}, fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
		}
	}
	return b, nil
}
