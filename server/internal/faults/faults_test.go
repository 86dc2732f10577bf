package faults_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/parleychat/parley/server/internal/chat"
	"github.com/parleychat/parley/server/internal/faults"
	"github.com/parleychat/parley/server/internal/memstore"
	"github.com/prometheus/client_golang/prometheus"
)

// The hub is what Receiver wraps in the server.
var _ faults.Receiver = (*chat.Hub)(nil)

var allFaults = []string{faults.SendErrors, faults.StoreLatency, faults.BrokerDrops, faults.SlowFanout}

// waitTimeout bounds waits for something that should happen at once; it is
// generous so that a loaded machine does not fail the tests.
const waitTimeout = 10 * time.Second

// fixture is an injector with each decorator wrapped around a real or
// recording dependency.
type fixture struct {
	in    *faults.Injector
	reg   *prometheus.Registry
	store chat.Store // memstore behind the injector
	room  chat.Room
	bus   *recordingBus
	recv  *recordingReceiver

	faultyBus  chat.Bus
	faultyRecv faults.Receiver
	sent       atomic.Int64 // client ids for appends
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureAt(t, nil)
}

func newFixtureAt(t *testing.T, now func() time.Time) *fixture {
	t.Helper()
	reg := prometheus.NewRegistry()
	in := faults.New(reg, now)
	t.Cleanup(in.Close)
	mem := memstore.New(memstore.Options{})
	room, err := mem.CreateRoom(context.Background(), chat.Room{ID: chat.NewID(time.Now()), Name: "game-day", CreatedAt: time.Now()})
	if err != nil {
		t.Fatalf("creating room: %v", err)
	}
	f := &fixture{in: in, reg: reg, store: in.Store(mem), room: room, bus: &recordingBus{}, recv: &recordingReceiver{}}
	f.faultyBus = in.Bus(f.bus)
	f.faultyRecv = in.Receiver(f.recv)
	return f
}

// mustSet switches a fault on or fails the test.
func (f *fixture) mustSet(t *testing.T, fault faults.Fault) faults.Fault {
	t.Helper()
	got, err := f.in.Set(fault)
	if err != nil {
		t.Fatalf("Set(%+v): %v", fault, err)
	}
	return got
}

// withDelay gives the delayed faults the delay they need and leaves the
// others without one.
func withDelay(name string, rate float64, delay time.Duration) faults.Fault {
	f := faults.Fault{Name: name, Rate: rate}
	if name == faults.StoreLatency || name == faults.SlowFanout {
		f.Delay = delay
	}
	return f
}

// append sends one message through the decorated store.
func (f *fixture) append(ctx context.Context) (chat.Message, error) {
	n := f.sent.Add(1)
	msg, _, err := f.store.Append(ctx, chat.Draft{
		ID: chat.NewID(time.Now()), Room: f.room.ID, ClientID: fmt.Sprintf("c%d", n),
		User: chat.User{ID: "u1", Username: "alice"}, Body: "hello", TS: time.Now(),
	})
	return msg, err
}

// hit makes one call through the decorator the fault acts on and reports
// whether the fault hit it. Delays are told apart by the time the call took,
// which is at least delay when the fault hit.
func (f *fixture) hit(t *testing.T, name string, delay time.Duration) bool {
	t.Helper()
	switch name {
	case faults.SendErrors:
		_, err := f.append(context.Background())
		if err != nil && !errors.Is(err, chat.ErrUnavailable) {
			t.Fatalf("append: got %v, want nil or ErrUnavailable", err)
		}
		return err != nil
	case faults.StoreLatency:
		start := time.Now()
		if _, err := f.store.Rooms(context.Background()); err != nil {
			t.Fatalf("Rooms: %v", err)
		}
		return time.Since(start) >= delay
	case faults.BrokerDrops:
		before := f.bus.published.Load()
		f.faultyBus.Publish(context.Background(), chat.Event{Kind: chat.EventTyping, Room: f.room.ID})
		return f.bus.published.Load() == before
	case faults.SlowFanout:
		before := f.recv.received.Load()
		start := time.Now()
		f.faultyRecv.Receive(context.Background(), chat.Event{Kind: chat.EventTyping, Room: f.room.ID})
		if got := f.recv.received.Load(); got != before+1 {
			t.Fatalf("events received: got %d, want %d (a delayed event must still arrive)", got, before+1)
		}
		return time.Since(start) >= delay
	}
	t.Fatalf("no probe for fault %q", name)
	return false
}

// callThrough makes one call that the fault acts on, for tests that only
// need the call made (hit reports on it, but must run on the test's
// goroutine).
func (f *fixture) callThrough(name string) {
	ev := chat.Event{Kind: chat.EventTyping, Room: f.room.ID}
	switch name {
	case faults.SendErrors, faults.StoreLatency:
		_, _ = f.append(context.Background())
	case faults.BrokerDrops:
		f.faultyBus.Publish(context.Background(), ev)
	case faults.SlowFanout:
		f.faultyRecv.Receive(context.Background(), ev)
	}
}

// metric reads one fault's series from the registry.
func (f *fixture) metric(t *testing.T, name, fault string) float64 {
	t.Helper()
	v, ok := f.series(t, name)[fault]
	if !ok {
		t.Fatalf("no series %s{fault=%q}", name, fault)
	}
	return v
}

// series reads a metric's value for each fault label. (The registry is read
// directly: prometheus/testutil would add a module to go.mod.)
func (f *fixture) series(t *testing.T, name string) map[string]float64 {
	t.Helper()
	families, err := f.reg.Gather()
	if err != nil {
		t.Fatalf("gathering metrics: %v", err)
	}
	values := make(map[string]float64)
	for _, mf := range families {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() != "fault" {
					continue
				}
				if m.GetGauge() != nil {
					values[l.GetValue()] = m.GetGauge().GetValue()
				} else {
					values[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	return values
}

// recordingBus counts what reaches it.
type recordingBus struct {
	published, watched, unwatched atomic.Int64
}

func (b *recordingBus) Publish(context.Context, chat.Event) { b.published.Add(1) }
func (b *recordingBus) Watch(string)                        { b.watched.Add(1) }
func (b *recordingBus) Unwatch(string)                      { b.unwatched.Add(1) }

// recordingReceiver counts what reaches it.
type recordingReceiver struct {
	received, resynced atomic.Int64
}

func (r *recordingReceiver) Receive(context.Context, chat.Event) { r.received.Add(1) }
func (r *recordingReceiver) Resync(string)                       { r.resynced.Add(1) }

func TestFaultHitsEveryCallAtFullRateAndNoneWhenOff(t *testing.T) {
	t.Parallel()
	// Long enough that an undelayed call never takes it, short enough to
	// wait for a few times.
	const delay = 50 * time.Millisecond
	for _, name := range allFaults {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				f := newFixture(t)
				check := func(state string, want bool) {
					t.Helper()
					for i := range 3 {
						if got := f.hit(t, name, delay); got != want {
							t.Fatalf("%s, call %d: got hit %v, want %v", state, i, got, want)
						}
					}
				}
				check("before Set", false)
				f.mustSet(t, withDelay(name, 1, delay))
				check("at rate 1", true)
				if err := f.in.Clear(name); err != nil {
					t.Fatalf("Clear: %v", err)
				}
				check("after Clear", false)
			})
		})
	}
}

func TestFaultAtHalfRateHitsSomeCallsButNotAll(t *testing.T) {
	t.Parallel()
	const calls, delay = 1000, time.Millisecond
	for _, name := range allFaults {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				f := newFixture(t)
				f.mustSet(t, withDelay(name, 0.5, delay))
				hits := 0
				for range calls {
					if f.hit(t, name, delay) {
						hits++
					}
				}
				if hits < 300 || hits > 700 {
					t.Errorf("got %d hits in %d calls at rate 0.5, want between 300 and 700", hits, calls)
				}
			})
		})
	}
}

func TestSendErrorsFailAppendsAsUnavailableAndStoreNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.mustSet(t, faults.Fault{Name: faults.SendErrors})

	_, err := f.append(context.Background())
	if !errors.Is(err, chat.ErrUnavailable) {
		t.Fatalf("got %v, want an ErrUnavailable error", err)
	}
	if got, want := err.Error(), "injected fault: store unavailable"; got != want {
		t.Errorf("got message %q, want %q", got, want)
	}
	msgs, _, err := f.store.History(context.Background(), f.room.ID, chat.Page{Limit: 10})
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	if len(msgs) != 0 {
		t.Errorf("got %d stored messages, want 0", len(msgs))
	}
}

func TestStoreLatencyDelaysEveryStoreMethod(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const delay = 20 * time.Millisecond
		f := newFixture(t)
		ctx := context.Background()
		calls := []struct {
			method string
			call   func() error
		}{
			{"CreateUser", func() error { return f.store.CreateUser(ctx, chat.User{ID: "u2", Username: "bob"}, "hash") }},
			{"Credentials", func() error { _, _, err := f.store.Credentials(ctx, "bob"); return err }},
			{"CreateRoom", func() error {
				_, err := f.store.CreateRoom(ctx, chat.Room{ID: chat.NewID(time.Now()), Name: "second", CreatedAt: time.Now()})
				return err
			}},
			{"Room", func() error { _, err := f.store.Room(ctx, f.room.ID); return err }},
			{"Rooms", func() error { _, err := f.store.Rooms(ctx); return err }},
			{"RoomsAfter", func() error { _, err := f.store.RoomsAfter(ctx, "", 10); return err }},
			{"LastSeqs", func() error { _, err := f.store.LastSeqs(ctx, []string{f.room.ID}); return err }},
			{"Append", func() error { _, err := f.append(ctx); return err }},
			{"History", func() error { _, _, err := f.store.History(ctx, f.room.ID, chat.Page{Limit: 10}); return err }},
			{"SaveTicket", func() error {
				return f.store.SaveTicket(ctx, chat.Ticket{Hash: "h", User: chat.User{ID: "u2", Username: "bob"}, Expires: time.Now().Add(time.Hour)})
			}},
			{"TakeTicket", func() error { _, err := f.store.TakeTicket(ctx, "h", time.Now()); return err }},
			{"Ping", func() error { return f.store.Ping(ctx) }},
			{"CreateSession", func() error {
				return f.store.CreateSession(ctx, chat.Session{ID: "s1", User: chat.User{ID: "u2", Username: "bob"}, Expires: time.Now().Add(time.Hour)})
			}},
			{"Session", func() error { _, err := f.store.Session(ctx, "s1", time.Now()); return err }},
			{"SessionStatuses", func() error { _, err := f.store.SessionStatuses(ctx, []string{"s1"}, time.Now()); return err }},
			{"SetPassword", func() error { return f.store.SetPassword(ctx, "u2", "another hash") }},
			{"RevokeSessions", func() error { return f.store.RevokeSessions(ctx, "u2", "s1") }},
			{"RevokeSession", func() error { return f.store.RevokeSession(ctx, "s1") }},
			{"DeleteUser", func() error { return f.store.DeleteUser(ctx, "u2") }},
		}
		f.mustSet(t, faults.Fault{Name: faults.StoreLatency, Delay: delay})
		// In order: each call needs what the ones before it stored, which also
		// shows that a delayed call still reaches the store.
		for _, c := range calls {
			start := time.Now()
			if err := c.call(); err != nil {
				t.Fatalf("%s: %v", c.method, err)
			}
			if took := time.Since(start); took < delay {
				t.Errorf("%s took %v, want at least %v", c.method, took, delay)
			}
		}
		if got, want := f.metric(t, "parley_fault_injections_total", faults.StoreLatency), float64(len(calls)); got != want {
			t.Errorf("got %v injections, want %v", got, want)
		}
	})
}

func TestStoreLatencyGivesUpWhenTheContextEnds(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		f.mustSet(t, faults.Fault{Name: faults.StoreLatency, Delay: faults.MaxDelay})

		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if _, err := f.append(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("append with a deadline: got %v, want context.DeadlineExceeded", err)
		}

		canceled, cancelNow := context.WithCancel(context.Background())
		cancelNow()
		if _, err := f.store.Rooms(canceled); !errors.Is(err, context.Canceled) {
			t.Errorf("Rooms with a canceled context: got %v, want context.Canceled", err)
		}

		if err := f.in.Clear(faults.StoreLatency); err != nil {
			t.Fatalf("Clear: %v", err)
		}
		msgs, _, err := f.store.History(context.Background(), f.room.ID, chat.Page{Limit: 10})
		if err != nil {
			t.Fatalf("History: %v", err)
		}
		if len(msgs) != 0 {
			t.Errorf("got %d stored messages, want 0: a call that gave up must not reach the store", len(msgs))
		}
	})
}

func TestBrokerDropsLeaveWatchAndUnwatchAlone(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.mustSet(t, faults.Fault{Name: faults.BrokerDrops})
	f.faultyBus.Watch(f.room.ID)
	f.faultyBus.Unwatch(f.room.ID)
	if got := f.bus.watched.Load(); got != 1 {
		t.Errorf("got %d watches, want 1", got)
	}
	if got := f.bus.unwatched.Load(); got != 1 {
		t.Errorf("got %d unwatches, want 1", got)
	}
}

func TestSlowFanoutPassesResyncStraightThrough(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// A resync that waited for this delay would time the test out.
	f.mustSet(t, faults.Fault{Name: faults.SlowFanout, Delay: faults.MaxDelay})
	f.faultyRecv.Resync(f.room.ID)
	if got := f.recv.resynced.Load(); got != 1 {
		t.Errorf("got %d resyncs, want 1", got)
	}
}

func TestSlowFanoutPassesTheEventOnWhenItsContextEnds(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		f.mustSet(t, faults.Fault{Name: faults.SlowFanout, Delay: faults.MaxDelay})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		f.faultyRecv.Receive(ctx, chat.Event{Kind: chat.EventTyping, Room: f.room.ID})
		if got := f.recv.received.Load(); got != 1 {
			t.Errorf("got %d events received, want 1: the fault delays events and never loses them", got)
		}
	})
}

func TestEndingAFaultEndsItsDelaysInProgress(t *testing.T) {
	t.Parallel()
	ends := []struct {
		name string
		end  func(t *testing.T, in *faults.Injector, fault string)
	}{
		{"Clear", func(t *testing.T, in *faults.Injector, fault string) {
			if err := in.Clear(fault); err != nil {
				t.Fatalf("Clear: %v", err)
			}
		}},
		{"ClearAll", func(_ *testing.T, in *faults.Injector, _ string) { in.ClearAll() }},
		{"Set again", func(t *testing.T, in *faults.Injector, fault string) {
			if _, err := in.Set(faults.Fault{Name: fault, Delay: time.Millisecond}); err != nil {
				t.Fatalf("Set: %v", err)
			}
		}},
		{"Close", func(_ *testing.T, in *faults.Injector, _ string) { in.Close() }},
	}
	delayed := []struct {
		fault string
		call  func(f *fixture) error
	}{
		{faults.StoreLatency, func(f *fixture) error { _, err := f.append(context.Background()); return err }},
		{faults.SlowFanout, func(f *fixture) error {
			f.faultyRecv.Receive(context.Background(), chat.Event{Room: f.room.ID})
			return nil
		}},
	}
	for _, d := range delayed {
		for _, e := range ends {
			t.Run(d.fault+"/"+e.name, func(t *testing.T) {
				t.Parallel()
				synctest.Test(t, func(t *testing.T) {
					f := newFixture(t)
					f.mustSet(t, faults.Fault{Name: d.fault, Delay: faults.MaxDelay})
					done := make(chan error, 1)
					go func() { done <- d.call(f) }()
					synctest.Wait()
					if got := f.metric(t, "parley_fault_injections_total", d.fault); got != 1 {
						t.Fatalf("got %v injections, want the call held by 1", got)
					}
					e.end(t, f.in, d.fault)
					select {
					case err := <-done:
						if err != nil {
							t.Fatalf("the held call: got %v, want nil: it goes on once the fault ends", err)
						}
					case <-time.After(waitTimeout):
						t.Fatalf("the held call did not return within %v of %s", waitTimeout, e.name)
					}
				})
			})
		}
	}
}

func TestDurationSwitchesAFaultOffByItself(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const duration = 50 * time.Millisecond
		f := newFixture(t)
		set := f.mustSet(t, faults.Fault{Name: faults.SendErrors, Duration: duration})
		if set.Until.IsZero() {
			t.Errorf("got zero Until, want the time the fault ends")
		}
		active := f.in.Active()
		if len(active) != 1 || active[0].Remaining <= 0 || active[0].Remaining > duration {
			t.Fatalf("got active %+v, want send_errors with between 0 and %v left", active, duration)
		}

		time.Sleep(duration)
		synctest.Wait()
		if active := f.in.Active(); len(active) != 0 {
			t.Fatalf("got active %+v once the duration passed, want none", active)
		}
		if f.hit(t, faults.SendErrors, 0) {
			t.Errorf("got a failed append after the duration, want none")
		}
		if got := f.metric(t, "parley_fault_active", faults.SendErrors); got != 0 {
			t.Errorf("got parley_fault_active %v after the duration, want 0", got)
		}
	})
}

func TestSetAgainReplacesTheEarlierSettingAndItsDuration(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const duration = 20 * time.Millisecond
		f := newFixture(t)
		f.mustSet(t, faults.Fault{Name: faults.BrokerDrops, Duration: duration})
		f.mustSet(t, faults.Fault{Name: faults.BrokerDrops, Rate: 0.25})

		// Past the first setting's end, the second (without a duration) stays.
		time.Sleep(5 * duration)
		active := f.in.Active()
		want := faults.Fault{Name: faults.BrokerDrops, Rate: 0.25}
		if len(active) != 1 || active[0] != want {
			t.Errorf("got active %+v, want only %+v", active, want)
		}
	})
}

func TestActiveReportsTimeLeftOnTheInjectedClock(t *testing.T) {
	t.Parallel()
	start := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	var elapsed atomic.Int64
	now := func() time.Time { return start.Add(time.Duration(elapsed.Load())) }
	f := newFixtureAt(t, now)

	set := f.mustSet(t, faults.Fault{Name: faults.StoreLatency, Delay: 200 * time.Millisecond, Duration: time.Hour})
	want := faults.Fault{Name: faults.StoreLatency, Rate: 1, Delay: 200 * time.Millisecond, Duration: time.Hour, Until: start.Add(time.Hour), Remaining: time.Hour}
	if set != want {
		t.Errorf("Set: got %+v, want %+v", set, want)
	}

	tests := []struct {
		name          string
		elapsed       time.Duration
		wantRemaining time.Duration
	}{
		{"part of the duration gone", 20 * time.Minute, 40 * time.Minute},
		{"clock past the end before the timer fired", 2 * time.Hour, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			elapsed.Store(int64(tt.elapsed))
			active := f.in.Active()
			if len(active) != 1 {
				t.Fatalf("got %d active faults, want 1", len(active))
			}
			if got := active[0].Remaining; got != tt.wantRemaining {
				t.Errorf("got remaining %v, want %v", got, tt.wantRemaining)
			}
		})
	}
}

func TestSetRefusesInvalidFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		fault   faults.Fault
		wantMsg string
	}{
		{"unknown name", faults.Fault{Name: "disk_full"}, `unknown fault "disk_full"`},
		{"rate above 1", faults.Fault{Name: faults.SendErrors, Rate: 2}, "rate must be more than 0 and at most 1, got 2"},
		{"negative rate", faults.Fault{Name: faults.SendErrors, Rate: -0.5}, "rate must be more than 0"},
		{"negative delay", faults.Fault{Name: faults.StoreLatency, Delay: -time.Second}, "delay must not be negative"},
		{"store_latency without delay", faults.Fault{Name: faults.StoreLatency}, "store_latency needs a delay"},
		{"slow_fanout without delay", faults.Fault{Name: faults.SlowFanout}, "slow_fanout needs a delay"},
		{"delay above the maximum", faults.Fault{Name: faults.SlowFanout, Delay: 2 * time.Minute}, "delay must be at most 1m0s, got 2m0s"},
		{"delay for a fault without one", faults.Fault{Name: faults.BrokerDrops, Delay: time.Second}, "broker_drops takes no delay"},
		{"negative duration", faults.Fault{Name: faults.SendErrors, Duration: -time.Minute}, "duration must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			_, err := f.in.Set(tt.fault)
			if !errors.Is(err, chat.ErrInvalid) {
				t.Fatalf("got %v, want an ErrInvalid error", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("got %q, want it to contain %q", err, tt.wantMsg)
			}
			if active := f.in.Active(); len(active) != 0 {
				t.Errorf("got active %+v after a refused Set, want none", active)
			}
		})
	}
}

func TestClearOfAnUnknownFaultIsInvalid(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if err := f.in.Clear("disk_full"); !errors.Is(err, chat.ErrInvalid) {
		t.Errorf("got %v, want an ErrInvalid error", err)
	}
	if err := f.in.Clear(faults.SendErrors); err != nil {
		t.Errorf("clearing a fault that is off: got %v, want nil", err)
	}
}

func TestMetricsFollowTheFaults(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// Every series exists at zero before any fault, so that "off" is a
	// sample on the dashboards rather than a gap.
	allZero := map[string]float64{faults.SendErrors: 0, faults.StoreLatency: 0, faults.BrokerDrops: 0, faults.SlowFanout: 0}
	for _, name := range []string{"parley_fault_active", "parley_fault_injections_total"} {
		if got := f.series(t, name); !maps.Equal(got, allZero) {
			t.Errorf("%s before any fault: got %v, want %v", name, got, allZero)
		}
	}

	f.mustSet(t, faults.Fault{Name: faults.BrokerDrops})
	if got := f.metric(t, "parley_fault_active", faults.BrokerDrops); got != 1 {
		t.Errorf("while on: got parley_fault_active %v, want 1", got)
	}
	for range 3 {
		f.hit(t, faults.BrokerDrops, 0)
	}
	if err := f.in.Clear(faults.BrokerDrops); err != nil {
		t.Fatalf("Clear: %v", err)
	}
	f.hit(t, faults.BrokerDrops, 0) // off: not counted

	if got := f.metric(t, "parley_fault_active", faults.BrokerDrops); got != 0 {
		t.Errorf("after Clear: got parley_fault_active %v, want 0", got)
	}
	if got := f.metric(t, "parley_fault_injections_total", faults.BrokerDrops); got != 3 {
		t.Errorf("got %v injections, want 3", got)
	}
	if got := f.metric(t, "parley_fault_injections_total", faults.SendErrors); got != 0 {
		t.Errorf("got %v send_errors injections, want 0", got)
	}
}

func TestCloseSwitchesEverythingOffAndRefusesLaterSets(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, name := range allFaults {
		fault := withDelay(name, 1, faults.MaxDelay)
		fault.Duration = time.Hour
		f.mustSet(t, fault)
	}
	f.in.Close()
	f.in.Close() // a second Close is harmless

	if active := f.in.Active(); len(active) != 0 {
		t.Errorf("got active %+v after Close, want none", active)
	}
	for _, name := range allFaults {
		if got := f.metric(t, "parley_fault_active", name); got != 0 {
			t.Errorf("got parley_fault_active{fault=%q} %v after Close, want 0", name, got)
		}
		if f.hit(t, name, faults.MaxDelay) {
			t.Errorf("%s hit a call after Close", name)
		}
	}
	if _, err := f.in.Set(faults.Fault{Name: faults.SendErrors}); !errors.Is(err, chat.ErrUnavailable) {
		t.Errorf("Set after Close: got %v, want an ErrUnavailable error", err)
	}
}

func TestConcurrentChangesAndCallsAreSafe(t *testing.T) {
	t.Parallel()
	// Enough rounds for the race detector to see changes and calls overlap.
	const rounds = 2000
	f := newFixture(t)
	var wg sync.WaitGroup
	for _, name := range allFaults {
		wg.Go(func() {
			for i := range rounds {
				fault := withDelay(name, 0.5, time.Microsecond)
				if i%3 == 0 {
					fault.Duration = time.Millisecond
				}
				if _, err := f.in.Set(fault); err != nil {
					t.Errorf("Set: %v", err)
					return
				}
				_ = f.in.Active()
				if err := f.in.Clear(name); err != nil {
					t.Errorf("Clear: %v", err)
					return
				}
			}
		})
		wg.Go(func() {
			for range rounds {
				f.callThrough(name)
			}
		})
	}
	wg.Wait()
}
