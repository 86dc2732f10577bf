package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Shape names, for -shapes.
const (
	shapeFanout = "fanout"
	shapeKnee   = "knee"
	shapeIdle   = "idle"
)

// loadResult is what the runner reads of the load generator's JSON report.
type loadResult struct {
	Started time.Time `json:"started"`
	Counts  struct {
		Failed      int64 `json:"failed"`
		Expected    int64 `json:"expected"`
		Delivered   int64 `json:"delivered"`
		Lost        int64 `json:"lost"`
		Unconfirmed int64 `json:"unconfirmed"`
	} `json:"counts"`
	Latency struct {
		Delivery struct {
			P50MS  float64 `json:"p50_ms"`
			P99MS  float64 `json:"p99_ms"`
			P999MS float64 `json:"p999_ms"`
		} `json:"delivery"`
	} `json:"latency"`
	Stages []struct {
		OffsetMS float64 `json:"offset_ms"`
	} `json:"stages"`
	Generator struct {
		Saturated   bool `json:"saturated"`
		Connections int  `json:"connections"`
	} `json:"generator"`
}

// loadStart is when the first stage began: the run's clock starts once
// the users are signed up and the rooms made, before anyone connects.
func (r loadResult) loadStart() time.Time {
	if len(r.Stages) == 0 {
		return r.Started
	}
	return r.Started.Add(time.Duration(r.Stages[0].OffsetMS * float64(time.Millisecond)))
}

// scenarioYAML is a one-stage scenario: users in rooms of roomSize, at rate
// messages a second for d.
func scenarioYAML(name string, users, roomSize int, rate float64, d time.Duration) string {
	return fmt.Sprintf(`name: %s
description: written by go run ./bench
users:
  count: %d
rooms:
  - name: room
    count: %d
    members: %d
stages:
  - name: load
    duration: %s
    rate: %g
drain: 10s
`, name, users, users/roomSize, roomSize, d, rate)
}

// load runs the load generator on a scenario against srv while sampling
// the server, and returns the generator's report and the samples.
func (r *runner) load(ctx context.Context, srv *server, label, sc string, rate float64, d time.Duration) (loadResult, []sample, error) {
	scPath := filepath.Join(r.workDir, label+".yaml")
	jsonPath := filepath.Join(r.workDir, label+".json")
	if err := os.WriteFile(scPath, []byte(sc), 0o600); err != nil {
		return loadResult{}, nil, err
	}
	// Sign-ups, connections and the drain on top of the stage, generously:
	// a run that takes longer than this is stuck.
	ctx, cancel := context.WithTimeout(ctx, d+5*time.Minute)
	defer cancel()
	samples := startSampler(ctx, srv.pid())
	gen, err := startChild(ctx, "loadtest", []string{r.bins.loadtest, "-target", srv.url, "-scenario", scPath, "-json", jsonPath,
		"-max-rate", strconv.FormatFloat(max(rate, 1), 'f', -1, 64), "-setup-concurrency", "32"}, nil, r.genCPU, filepath.Join(r.logDir, label+"-loadtest.log"))
	if err != nil {
		samples.stop()
		return loadResult{}, nil, err
	}
	<-gen.done
	series := samples.stop()
	if samples.failed != nil {
		fmt.Fprintf(os.Stderr, "%s: a sample of the server failed: %v\n", label, samples.failed)
	}
	// Exit status 1 is a broken threshold; these scenarios have none, and
	// the figures are judged here anyway.
	if ctx.Err() != nil {
		return loadResult{}, nil, gen.failure(ctx.Err())
	}
	if gen.err != nil && gen.cmd.ProcessState.ExitCode() != 1 {
		return loadResult{}, nil, gen.failure(gen.err)
	}
	raw, err := os.ReadFile(jsonPath)
	if err != nil {
		return loadResult{}, nil, gen.failure(err)
	}
	var res loadResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return loadResult{}, nil, fmt.Errorf("%s: %w", jsonPath, err)
	}
	return res, series, nil
}

// runLabel names a run's files: target, shape and round.
func runLabel(t target, shape string, round int) string {
	return fmt.Sprintf("%s-%s-r%d", t.name, shape, round)
}

// fanout runs round of the fan-out shape on a fresh server.
func (r *runner) fanout(ctx context.Context, t target, round int) (*fanoutResult, error) {
	label := runLabel(t, shapeFanout, round)
	srv, err := startServer(ctx, t, r.bins, r.serverCPU, r.logDir, label)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	exports := r.sink.requests.Load()
	o := r.opts
	res, series, err := r.load(ctx, srv, label, scenarioYAML("bench-fanout", o.conns, 10, o.rate, o.duration), o.rate, o.duration)
	if err != nil {
		return nil, err
	}
	start := res.loadStart()
	end := start.Add(o.duration)
	cpu0, ok0 := cpuAt(series, start)
	cpu1, ok1 := cpuAt(series, end)
	if !ok0 || !ok1 {
		return nil, fmt.Errorf("%s: the server's samples (%s) do not cover the load window %s to %s",
			label, describeSeries(series), start.Format(time.StampMilli), end.Format(time.StampMilli))
	}
	f := &fanoutResult{
		Rate: o.rate, Connections: res.Generator.Connections, WindowSeconds: o.duration.Seconds(), CPUSeconds: cpu1 - cpu0,
		Expected: res.Counts.Expected, Deliveries: res.Counts.Delivered, Lost: res.Counts.Lost, Unconfirmed: res.Counts.Unconfirmed,
		SendsFailed: res.Counts.Failed, P50MS: res.Latency.Delivery.P50MS, P99MS: res.Latency.Delivery.P99MS, P999MS: res.Latency.Delivery.P999MS,
		GeneratorSaturated: res.Generator.Saturated, TraceExports: r.sink.requests.Load() - exports,
	}
	if f.Deliveries > 0 {
		f.CPUPer1k = f.CPUSeconds / float64(f.Deliveries) * 1000
	}
	return f, nil
}

// knee runs round of the knee shape: each rate on a fresh server, rising,
// until one does not hold.
func (r *runner) knee(ctx context.Context, t target, round int) (*kneeResult, error) {
	k := &kneeResult{}
	o := r.opts
	for _, rate := range o.kneeRates {
		label := fmt.Sprintf("%s-%g", runLabel(t, shapeKnee, round), rate)
		srv, err := startServer(ctx, t, r.bins, r.serverCPU, r.logDir, label)
		if err != nil {
			return nil, err
		}
		res, _, err := r.load(ctx, srv, label, scenarioYAML("bench-knee", o.conns, 10, rate, o.kneeDuration), rate, o.kneeDuration)
		srv.stop()
		if err != nil {
			return nil, err
		}
		s := kneeStep{Rate: rate, P99MS: res.Latency.Delivery.P99MS, Expected: res.Counts.Expected, Deliveries: res.Counts.Delivered,
			Loss: 1, Saturated: res.Generator.Saturated}
		if s.Expected > 0 {
			s.Loss = float64(res.Counts.Lost+res.Counts.Unconfirmed) / float64(s.Expected)
		}
		k.Steps = append(k.Steps, s)
		r.progress("  %s at %g msg/s: delivery p99 %.2f ms, loss %.4f%%, holds: %v", t.name, rate, s.P99MS, 100*s.Loss, s.holds())
		if !s.holds() {
			break
		}
	}
	k.Knee = kneeOf(k.Steps)
	return k, nil
}

// idle runs round of the idle shape: connections that join their rooms
// and then send nothing for the hold.
func (r *runner) idle(ctx context.Context, t target, round int) (*idleResult, error) {
	label := runLabel(t, shapeIdle, round)
	srv, err := startServer(ctx, t, r.bins, r.serverCPU, r.logDir, label)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	var goroutines *scraper
	if srv.admin != "" {
		goroutines = startScraper(ctx, srv.admin+"/metrics", "go_goroutines")
	}
	o := r.opts
	res, series, err := r.load(ctx, srv, label, scenarioYAML("bench-idle", o.idleConns, o.idleRoom, 0, o.hold), 0, o.hold)
	var counts []reading
	if goroutines != nil {
		counts = goroutines.stop()
	}
	if err != nil {
		return nil, err
	}
	end := res.loadStart().Add(o.hold)
	before, ok0 := rssBefore(series, res.Started)
	after, ok1 := rssBefore(series, end)
	if !ok0 || !ok1 {
		return nil, fmt.Errorf("%s: the server's samples do not cover the setup and the hold", label)
	}
	f := &idleResult{Connections: res.Generator.Connections, HoldSeconds: o.hold.Seconds(), RSSBefore: before, RSSAfter: after}
	if f.Connections > 0 {
		f.PerConnKiB = float64(after-before) / float64(f.Connections)
	}
	for _, c := range counts {
		if !c.at.After(end) {
			f.Goroutines = int(c.value)
		}
	}
	return f, nil
}

// reading is one value of a metric read at one moment.
type reading struct {
	at    time.Time
	value float64
}

// scraper reads one unlabelled series from a Prometheus endpoint every
// scrapeInterval, until stopped.
type scraper struct {
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	readings []reading
}

// scrapeInterval is how often the idle shape reads Parley's goroutines:
// often enough to have a reading close to the hold's end, and seldom
// enough to cost the server nothing worth counting.
const scrapeInterval = 2 * time.Second

func startScraper(ctx context.Context, url, series string) *scraper {
	ctx, cancel := context.WithCancel(ctx)
	s := &scraper{cancel: cancel}
	client := &http.Client{Timeout: time.Second}
	s.wg.Go(func() {
		t := time.NewTicker(scrapeInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			at := time.Now()
			if v, ok := scrape(ctx, client, url, series); ok {
				s.readings = append(s.readings, reading{at: at, value: v})
			}
		}
	})
	return s
}

func (s *scraper) stop() []reading {
	s.cancel()
	s.wg.Wait()
	return s.readings
}

// scrape reads the value of an unlabelled series in the text exposition
// format.
func scrape(ctx context.Context, client *http.Client, url, series string) (float64, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, false
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}
