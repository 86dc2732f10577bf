package driver

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleychat/parley/loadtest/check"
	"github.com/parleychat/parley/loadtest/scenario"
	"github.com/parleychat/parley/loadtest/schedule"
	"github.com/parleychat/parley/loadtest/wire"
)

// prepare loads the scenario, refuses it if it would overstep a guard
// rail or could not run, and makes the clients that reach the targets.
// Nothing has been sent yet.
func prepare(cfg Config, stderr io.Writer) (*run, error) {
	sc, err := scenario.Load(cfg.Scenario)
	if err != nil {
		return nil, err
	}
	plan, err := sc.Plan()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Scenario, err)
	}
	if err := refuse(cfg, sc, plan); err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, sc: sc, plan: plan, stderr: stderr}
	dial := sourceDialer(cfg.SourceAddrs)
	r.http = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: dial, MaxIdleConnsPerHost: cfg.SetupConcurrency, TLSClientConfig: cfg.TLS,
	}}
	for _, t := range cfg.Targets {
		api, err := wire.NewClient(t, r.http)
		if err != nil {
			return nil, fmt.Errorf("-target: %w", err)
		}
		r.apis = append(r.apis, api)
	}
	// Idle connections hold no write buffer (the pool lends one per write):
	// at 15,000 connections that is 60 MB less.
	r.ws = &websocket.Dialer{NetDialContext: dial, HandshakeTimeout: 15 * time.Second, TLSClientConfig: cfg.TLS,
		WriteBufferPool: &sync.Pool{}}
	return r, nil
}

// refuse says why the scenario may not run with cfg: a guard rail it
// oversteps (raise the flag on purpose, so that a typo does not flood
// staging), usernames the API would refuse, or a fault due after the
// load.
func refuse(cfg Config, sc *scenario.Scenario, plan *schedule.Plan) error {
	if d := plan.Duration(); d > cfg.MaxDuration {
		return fmt.Errorf("the scenario lasts %v, more than -max-duration %v: raise the flag to run it", d, cfg.MaxDuration)
	}
	if r := peakRate(sc.Stages); r > cfg.MaxRate {
		return fmt.Errorf("the scenario reaches %v messages a second, more than -max-rate %v: raise the flag to run it", r, cfg.MaxRate)
	}
	if n := len(sc.Users.Prefix) + len(cfg.RunID) + len(strconv.Itoa(sc.Users.Count-1)) + 2; n > 32 && sc.Users.TokenFile == "" {
		return fmt.Errorf("usernames would have %d characters, more than the API's 32: shorten users.prefix in the scenario or -run-id", n)
	}
	if slices.Contains(cfg.Checks.Names, check.SLOAlert) && cfg.Checks.FaultAfter >= plan.Duration() {
		return fmt.Errorf("-fault-after %v is not within the load (%v): the alert needs traffic to fire", cfg.Checks.FaultAfter, plan.Duration())
	}
	return nil
}

// peakRate is the highest rate any stage asks for.
func peakRate(stages []schedule.Stage) float64 {
	peak := 0.0
	for _, s := range stages {
		peak = max(peak, s.Rate, s.From, s.To, s.Peak)
	}
	return peak
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
