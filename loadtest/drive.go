package main

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sync/errgroup"

	"github.com/parleychat/parley/loadtest/check"
	"github.com/parleychat/parley/loadtest/ledger"
	"github.com/parleychat/parley/loadtest/report"
	"github.com/parleychat/parley/loadtest/scenario"
	"github.com/parleychat/parley/loadtest/schedule"
	"github.com/parleychat/parley/loadtest/stats"
	"github.com/parleychat/parley/loadtest/wait"
	"github.com/parleychat/parley/loadtest/wire"
)

// drive runs one scenario against cfg.target and reports on it.
func drive(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	sc, err := scenario.Load(cfg.scenario)
	if err != nil {
		return err
	}
	plan, err := sc.Plan()
	if err != nil {
		return fmt.Errorf("%s: %w", cfg.scenario, err)
	}
	if d := plan.Duration(); d > cfg.maxDuration {
		return fmt.Errorf("the scenario lasts %v, more than -max-duration %v: raise the flag to run it", d, cfg.maxDuration)
	}
	if r := peakRate(sc.Stages); r > cfg.maxRate {
		return fmt.Errorf("the scenario reaches %v messages a second, more than -max-rate %v: raise the flag to run it", r, cfg.maxRate)
	}

	dialer := sourceDialer(cfg.sourceAddrs)
	httpClient := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: dialer, MaxIdleConnsPerHost: cfg.setupConc, TLSClientConfig: cfg.tls,
	}}
	defer httpClient.CloseIdleConnections()
	var apis []*wire.Client
	for _, t := range cfg.targets {
		api, err := wire.NewClient(t, httpClient)
		if err != nil {
			return fmt.Errorf("-target: %w", err)
		}
		apis = append(apis, api)
	}
	if n := len(sc.Users.Prefix) + len(cfg.runID) + len(strconv.Itoa(sc.Users.Count-1)) + 2; n > 32 && sc.Users.TokenFile == "" {
		return fmt.Errorf("usernames would have %d characters, more than the API's 32: shorten users.prefix in the scenario or -run-id", n)
	}
	if slices.Contains(cfg.checks.Names, check.SLOAlert) && cfg.checks.FaultAfter >= plan.Duration() {
		return fmt.Errorf("-fault-after %v is not within the load (%v): the alert needs traffic to fire", cfg.checks.FaultAfter, plan.Duration())
	}
	api := apis[0] // for setting up: every target serves the same data
	// Idle connections hold no write buffer (the pool lends one per write):
	// at 15,000 connections that is 60 MB less.
	wsDialer := &websocket.Dialer{NetDialContext: dialer, HandshakeTimeout: 15 * time.Second, TLSClientConfig: cfg.tls,
		WriteBufferPool: &sync.Pool{}}

	progress := func(format string, args ...any) {
		if !cfg.quiet {
			fmt.Fprintf(stderr, format+"\n", args...)
		}
	}
	progress("run %s: setting up %d users and %d rooms on %s", cfg.runID, sc.Users.Count, roomCount(sc), strings.Join(cfg.targets, ", "))
	tokens, err := setUpUsers(ctx, api, sc, cfg)
	if err != nil {
		return err
	}
	rooms, err := setUpRooms(ctx, api, tokens[0], sc, cfg.runID)
	if err != nil {
		return err
	}

	counters := &stats.Counters{}
	started := time.Now()
	l := ledger.New(started, time.Second)
	users := make([]*vuser, len(tokens))
	for i, t := range tokens {
		ws := apis[i%len(apis)].WebSocketURL()
		dial := func(ctx context.Context, token string) (*wire.Conn, error) {
			return wire.Dial(ctx, wsDialer, ws, token)
		}
		users[i] = newVUser(int32(i), t, l, counters, dial)
	}
	for _, r := range rooms {
		for _, m := range r.members {
			users[m].rooms = append(users[m].rooms, r)
		}
	}
	var active []*vuser // users in at least one room: the others have nothing to do
	for _, u := range users {
		if len(u.rooms) > 0 {
			active = append(active, u)
		}
	}

	if cfg.metricsAddr != "" {
		addr, stop, err := stats.ServeMetrics(cfg.metricsAddr, l, counters)
		if err != nil {
			return fmt.Errorf("-metrics-addr: %w", err)
		}
		defer stop()
		progress("metrics at http://%s/metrics", addr)
	}

	userCtx, stopUsers := context.WithCancel(ctx)
	var usersWG sync.WaitGroup
	defer func() { stopUsers(); usersWG.Wait() }()
	progress("connecting %d users", len(active))
	connecting, cctx := errgroup.WithContext(ctx)
	connecting.SetLimit(cfg.setupConc)
	for _, u := range active {
		usersWG.Go(func() { u.run(userCtx) })
		connecting.Go(func() error {
			select {
			case <-u.joined:
				return nil
			case <-cctx.Done():
				return cctx.Err()
			case <-time.After(30 * time.Second):
				return fmt.Errorf("user %d did not join its rooms in 30s", u.idx)
			}
		})
	}
	if err := connecting.Wait(); err != nil {
		return err
	}

	load := stats.BeginLoad()
	grafana := newAnnotator(cfg.grafana, cfg.grafanaToken, cfg.runID, progress)
	marks := scheduleStages(userCtx, &usersWG, sc.Stages, load.Start().Sub(started), active, grafana, progress)
	loadEnded := make(chan struct{})
	verdicts := check.Start(ctx, cfg.checks, loadEnded, progress)
	progressCtx, stopProgress := context.WithCancel(ctx)
	var progressWG sync.WaitGroup
	if !cfg.quiet {
		progressWG.Go(func() { stats.PrintProgress(progressCtx, stderr, l, counters, started) })
	}
	lag := dispatch(ctx, plan, load.Start(), sc, cfg, rooms, users, l)
	drain(ctx, sc.Drain, l)
	close(loadEnded)
	if len(cfg.checks.Names) > 0 {
		progress("waiting for the checks")
	}
	checks := verdicts() // the load has ended; a check still waiting for a resolve needs no more of it
	stopProgress()
	progressWG.Wait()
	gen := load.Generator(lag, counters) // while the connections are still up
	stopUsers()
	usersWG.Wait()

	res := l.Finish(time.Now())
	run := report.Run{
		ID: cfg.runID, Scenario: sc.Name, Target: strings.Join(cfg.targets, ","), Started: started, Duration: time.Since(started),
		Result: res, Stages: marks, Checks: checks,
		Generator: gen,
	}
	values := res.Values()
	if limit, ok := kneeBar(sc); ok {
		run.Knee = findKnee(res.Timeline, res.Interval, limit)
	}
	for _, t := range sc.Thresholds {
		got := values[t.Metric]
		run.Thresholds = append(run.Thresholds, report.Verdict{Text: t.Text, Got: got, Pass: t.Holds(got)})
	}
	if err := writeReports(cfg, run, stdout); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return errors.New("interrupted: the figures above cover only part of the run")
	}
	if !run.Pass() {
		return errThresholds
	}
	return nil
}

// kneeBar is the delivery p99 limit of a scenario whose load rises (a ramp
// or steps): the bar its knee is read against.
func kneeBar(sc *scenario.Scenario) (time.Duration, bool) {
	rising := false
	for _, s := range sc.Stages {
		rising = rising || s.Shape == schedule.Ramp || s.Shape == schedule.Steps
	}
	for _, t := range sc.Thresholds {
		if rising && t.Metric == "delivery_p99" && (t.Op == "<" || t.Op == "<=") {
			return time.Duration(t.Value * float64(time.Second)), true
		}
	}
	return 0, false
}

// dispatch hands each arrival of the plan to a sender at its intended time,
// whatever the server does meanwhile: the open model. It returns the
// scheduling lag, how late the generator itself was.
func dispatch(ctx context.Context, plan *schedule.Plan, start time.Time, sc *scenario.Scenario, cfg config,
	rooms []*room, users []*vuser, l *ledger.Ledger) *stats.Lag {
	lag := stats.NewLag()
	runID := cfg.runID
	bodies := newBodyMaker(runID, sc.Message.MinBytes, sc.Message.MaxBytes)
	i := 0
	for _, arrival := range plan.Arrivals() {
		intended := start.Add(arrival.Offset)
		// Sleeping for less than a fraction of a millisecond costs more
		// than it is worth at high rates; sends go out up to 200 µs early
		// instead, which shortens measured latencies by at most that.
		if d := time.Until(intended); d > 200*time.Microsecond {
			_ = wait.Sleep(ctx, d)
		}
		if ctx.Err() != nil {
			break
		}
		lag.Record(time.Since(intended))
		r := rooms[i%len(rooms)]
		sender := users[r.members[r.next%len(r.members)]]
		r.next++
		clientID := runID + "-" + strconv.Itoa(i)
		frame := wire.SendFrame(r.id, clientID, bodies.next(), traceparent(rand.Float64() < cfg.traceRatio))
		l.Expect(clientID, r.id, intended, r.members)
		var typing []byte
		if sc.Typing > 0 && rand.Float64() < sc.Typing {
			typing = wire.TypingFrame(r.id)
		}
		sender.send(clientID, frame, typing)
		i++
	}
	// The plan lasts its whole length, even when its last stretch sends
	// nothing (a quiet stage after a spike, say).
	_ = wait.Sleep(ctx, time.Until(start.Add(plan.Duration())))
	return lag
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

// scheduleStages marks each stage's start and starts one goroutine (which
// wg waits for) that, as each stage begins, says so, annotates Grafana when
// asked to, and for a stage with reconnect drops that share of the users'
// connections.
func scheduleStages(ctx context.Context, wg *sync.WaitGroup, stages []schedule.Stage, offset time.Duration, users []*vuser,
	grafana *annotator, progress func(string, ...any)) []report.StageMark {
	var marks []report.StageMark
	var starts []time.Duration
	at := time.Duration(0)
	for i, s := range stages {
		name := s.Name
		if name == "" {
			name = "stage " + strconv.Itoa(i+1)
		}
		marks = append(marks, report.StageMark{Name: name, Offset: offset + at})
		starts = append(starts, at)
		at += s.Duration
	}
	begin := time.Now()
	wg.Go(func() {
		for i, s := range stages {
			if wait.Sleep(ctx, time.Until(begin.Add(starts[i]))) != nil {
				return
			}
			progress("stage %s begins", marks[i].Name)
			grafana.annotate(ctx, marks[i].Name, s)
			if s.Reconnect > 0 {
				n := int(float64(len(users)) * s.Reconnect)
				progress("%s: dropping %d connections", marks[i].Name, n)
				for _, j := range rand.Perm(len(users))[:n] {
					users[j].dropConnection()
				}
			}
		}
	})
	return marks
}

// peakRate is the highest rate any stage asks for.
func peakRate(stages []schedule.Stage) float64 {
	peak := 0.0
	for _, s := range stages {
		peak = max(peak, s.Rate, s.From, s.To, s.Peak)
	}
	return peak
}

func roomCount(sc *scenario.Scenario) int {
	n := 0
	for _, g := range sc.Rooms {
		n += g.Count
	}
	return n
}

// setUpUsers signs up the scenario's users, or reads their tokens from the
// scenario's token file.
func setUpUsers(ctx context.Context, api *wire.Client, sc *scenario.Scenario, cfg config) ([]string, error) {
	if sc.Users.TokenFile != "" {
		raw, err := os.ReadFile(sc.Users.TokenFile)
		if err != nil {
			return nil, err
		}
		tokens := strings.Fields(string(raw))
		if len(tokens) < sc.Users.Count {
			return nil, fmt.Errorf("%s holds %d tokens, the scenario needs %d", sc.Users.TokenFile, len(tokens), sc.Users.Count)
		}
		return tokens[:sc.Users.Count], nil
	}
	tokens := make([]string, sc.Users.Count)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.setupConc)
	for i := range tokens {
		g.Go(func() error {
			name := fmt.Sprintf("%s-%s-%d", sc.Users.Prefix, cfg.runID, i)
			s, err := api.SignUp(gctx, name, cfg.password)
			if wire.IsConflict(err) {
				s, err = api.LogIn(gctx, name, cfg.password)
			}
			if err != nil {
				return fmt.Errorf("user %s: %w", name, err)
			}
			tokens[i] = s.Token
			return nil
		})
	}
	return tokens, g.Wait()
}

// setUpRooms creates the scenario's rooms, with the members its layout
// gives each.
func setUpRooms(ctx context.Context, api *wire.Client, token string, sc *scenario.Scenario, runID string) ([]*room, error) {
	var rooms []*room
	for _, lr := range sc.Layout() {
		name := fmt.Sprintf("%s-%s-%s", sc.Users.Prefix, runID, lr.Name)
		created, err := api.CreateRoom(ctx, token, name)
		if err != nil {
			return nil, fmt.Errorf("room %s: %w", name, err)
		}
		r := &room{id: created.ID}
		for _, m := range lr.Members {
			r.members = append(r.members, int32(m))
		}
		rooms = append(rooms, r)
	}
	return rooms, nil
}

// sourceDialer dials from each of addrs in turn, or from the system's
// choice when there are none: one local address has about 28,000
// ephemeral ports towards one server address.
func sourceDialer(addrs []net.IP) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if len(addrs) == 0 {
		d := &net.Dialer{Timeout: 15 * time.Second}
		return d.DialContext
	}
	dialers := make([]*net.Dialer, len(addrs))
	for i, ip := range addrs {
		dialers[i] = &net.Dialer{Timeout: 15 * time.Second, LocalAddr: &net.TCPAddr{IP: ip}}
	}
	var n atomic.Uint64
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dialers[n.Add(1)%uint64(len(dialers))].DialContext(ctx, network, addr)
	}
}

// traceparent starts a new trace for a message, so that the server's
// spans of it join a trace of its own; only a share is marked sampled, or
// the run would measure a server that traces every message.
func traceparent(sampled bool) string {
	var b [55]byte
	copy(b[:], "00-")
	hex.Encode(b[3:19], binary.BigEndian.AppendUint64(nil, rand.Uint64()))
	hex.Encode(b[19:35], binary.BigEndian.AppendUint64(nil, rand.Uint64()))
	b[35] = '-'
	hex.Encode(b[36:52], binary.BigEndian.AppendUint64(nil, rand.Uint64()|1))
	copy(b[52:], "-00")
	if sampled {
		b[54] = '1'
	}
	return string(b[:])
}

// bodyMaker makes message bodies of the scenario's sizes, each starting
// with the run id so that a stored message says which run sent it.
type bodyMaker struct {
	prefix   string
	filler   string
	min, max int
}

func newBodyMaker(runID string, minBytes, maxBytes int) *bodyMaker {
	return &bodyMaker{prefix: "run " + runID + " ", filler: strings.Repeat("lorem ipsum dolor sit amet ", maxBytes/27+1), min: minBytes, max: maxBytes}
}

func (b *bodyMaker) next() string {
	n := b.min
	if b.max > b.min {
		n += rand.N(b.max - b.min + 1)
	}
	if n <= len(b.prefix) {
		return b.prefix[:max(n, 1)]
	}
	return b.prefix + b.filler[:n-len(b.prefix)]
}
