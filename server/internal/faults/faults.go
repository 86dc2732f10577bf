package faults

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleychat/parley/server/internal/chat"
	"github.com/prometheus/client_golang/prometheus"
)

// The names of the faults, as they appear in the API and in metric labels.
const (
	SendErrors   = "send_errors"
	StoreLatency = "store_latency"
	BrokerDrops  = "broker_drops"
	SlowFanout   = "slow_fanout"
)

// MaxDelay bounds the delay of store_latency and slow_fanout, so that a typo
// in a game day cannot park the bus's receive goroutine for an hour.
const MaxDelay = 60 * time.Second

// kind indexes the per-fault state; names maps it to the public name.
type kind int

const (
	sendErrors kind = iota
	storeLatency
	brokerDrops
	slowFanout
	numKinds
)

var names = [numKinds]string{SendErrors, StoreLatency, BrokerDrops, SlowFanout}

// delayed reports whether the fault needs a delay.
func (k kind) delayed() bool { return k == storeLatency || k == slowFanout }

func kindOf(name string) (kind, error) {
	for k, n := range names {
		if n == name {
			return kind(k), nil
		}
	}
	return 0, chat.Errorf(chat.ErrInvalid, "unknown fault %q; known faults are %s", name, strings.Join(names[:], ", "))
}

// Fault is one fault and how it is switched on.
type Fault struct {
	Name string
	// Rate is the fraction of calls the fault hits, in (0, 1]; zero means 1.
	Rate float64
	// Delay is how long store_latency and slow_fanout hold each call they
	// hit, at most MaxDelay. The other faults take none.
	Delay time.Duration
	// Duration switches the fault off by itself this long after it was set;
	// zero leaves it on until it is cleared.
	Duration time.Duration
	// Until is when a fault with a Duration switches off. Set fills it in.
	Until time.Time
	// Remaining is how much of Duration is left. Active and Fault fill it in.
	Remaining time.Duration
}

// CheckRate refuses a rate outside (0, 1]. Set applies it once a zero Rate
// has taken its default of 1, so a caller that was given a rate explicitly
// checks it first: an explicit 0 is a mistake, not a request for the
// default.
func CheckRate(rate float64) error {
	if !(rate > 0 && rate <= 1) { // written so that NaN fails too
		return chat.Errorf(chat.ErrInvalid, "rate must be more than 0 and at most 1, got %v", rate)
	}
	return nil
}

// validate fills in defaults and checks f, naming the field at fault.
func validate(f *Fault) (kind, error) {
	k, err := kindOf(f.Name)
	if err != nil {
		return 0, err
	}
	if f.Rate == 0 {
		f.Rate = 1
	}
	if err := CheckRate(f.Rate); err != nil {
		return 0, err
	}
	switch {
	case f.Delay < 0:
		return 0, chat.Errorf(chat.ErrInvalid, "delay must not be negative, got %v", f.Delay)
	case k.delayed() && f.Delay == 0:
		return 0, chat.Errorf(chat.ErrInvalid, "%s needs a delay (for example \"200ms\")", f.Name)
	case k.delayed() && f.Delay > MaxDelay:
		return 0, chat.Errorf(chat.ErrInvalid, "delay must be at most %v, got %v", MaxDelay, f.Delay)
	case !k.delayed() && f.Delay != 0:
		// Refused rather than ignored, so that nobody believes they slowed
		// something down.
		return 0, chat.Errorf(chat.ErrInvalid, "%s takes no delay", f.Name)
	case f.Duration < 0:
		return 0, chat.Errorf(chat.ErrInvalid, "duration must not be negative, got %v", f.Duration)
	}
	f.Until, f.Remaining = time.Time{}, 0
	return k, nil
}

// armed is one setting of a fault. It never changes once published, so the
// hot path reads it without a lock; a new Set publishes a new one.
type armed struct {
	fault Fault
	// stop is closed when this setting ends (cleared, replaced, expired or
	// closed), which ends the delays it started early.
	stop  chan struct{}
	timer *time.Timer // nil without a Duration
}

// fires decides whether this call is hit.
func (a *armed) fires() bool {
	return a.fault.Rate >= 1 || rand.Float64() < a.fault.Rate
}

// wait holds the caller for the fault's delay. It returns ctx's error when
// ctx ends first, and nil early when the setting ends, since a cleared fault
// should stop hurting at once.
func (a *armed) wait(ctx context.Context) error {
	t := time.NewTimer(a.fault.Delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-a.stop:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Injector holds the faults that are on and makes the decorators obey them.
// It is safe for concurrent use. The decorators read a fault with one atomic
// load; the mutex serializes only changes.
type Injector struct {
	now   func() time.Time
	slots [numKinds]atomic.Pointer[armed]

	active     [numKinds]prometheus.Gauge
	injections [numKinds]prometheus.Counter

	mu     sync.Mutex
	closed bool
	// timers counts Duration timers that are pending or running, so that
	// Close can wait until none is left.
	timers sync.WaitGroup
}

// New returns an injector with every fault off and registers its metrics
// with reg. now is the clock for Until and Remaining; nil means time.Now.
func New(reg prometheus.Registerer, now func() time.Time) *Injector {
	if now == nil {
		now = time.Now
	}
	active := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "parley_fault_active",
		Help: "Whether an injected fault is switched on (1) or off (0).",
	}, []string{"fault"})
	injections := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_fault_injections_total",
		Help: "Calls an injected fault hit: failed appends, delayed store calls, dropped publishes, delayed deliveries.",
	}, []string{"fault"})
	reg.MustRegister(active, injections)

	in := &Injector{now: now}
	// Resolving the children once creates every series at zero, so that
	// "off" is a sample rather than a gap, and keeps label lookups off the
	// hot path.
	for k, name := range names {
		in.active[k] = active.WithLabelValues(name)
		in.injections[k] = injections.WithLabelValues(name)
	}
	return in
}

// Set switches a fault on, replacing its earlier setting (delays that the
// earlier setting started end at once). It returns the fault as set, with
// defaults filled in and Until set when it has a Duration. Invalid input is
// a chat.ErrInvalid error that names the field; after Close every Set fails
// with chat.ErrUnavailable.
func (in *Injector) Set(f Fault) (Fault, error) {
	k, err := validate(&f)
	if err != nil {
		return Fault{}, err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return Fault{}, chat.Errorf(chat.ErrUnavailable, "fault injector is closed")
	}
	a := &armed{stop: make(chan struct{})}
	if f.Duration > 0 {
		f.Until = in.now().Add(f.Duration)
		f.Remaining = f.Duration
		in.timers.Add(1)
		a.timer = time.AfterFunc(f.Duration, func() { in.expire(k, a) })
	}
	a.fault = f
	in.retire(in.slots[k].Swap(a))
	in.active[k].Set(1)
	return f, nil
}

// Clear switches a fault off; clearing a fault that is off does nothing.
// Only an unknown name is an error.
func (in *Injector) Clear(name string) error {
	k, err := kindOf(name)
	if err != nil {
		return err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.clearLocked(k)
	return nil
}

// ClearAll switches every fault off.
func (in *Injector) ClearAll() {
	in.mu.Lock()
	defer in.mu.Unlock()
	for k := range numKinds {
		in.clearLocked(k)
	}
}

// Active lists the faults that are on, in a fixed order, each with the time
// it has left.
func (in *Injector) Active() []Fault {
	now := in.now()
	var out []Fault
	for k := range numKinds {
		if a := in.slots[k].Load(); a != nil {
			out = append(out, a.report(now))
		}
	}
	return out
}

// Fault returns the named fault's setting, with the time it has left, and
// whether it is on. An unknown name is a chat.ErrInvalid error.
func (in *Injector) Fault(name string) (f Fault, on bool, err error) {
	k, err := kindOf(name)
	if err != nil {
		return Fault{}, false, err
	}
	a := in.slots[k].Load()
	if a == nil {
		return Fault{}, false, nil
	}
	return a.report(in.now()), true, nil
}

func (a *armed) report(now time.Time) Fault {
	f := a.fault
	if f.Duration > 0 {
		// The timer, not this clock, switches the fault off; until it does,
		// a clock that ran ahead reports nothing left rather than less.
		f.Remaining = max(f.Until.Sub(now), 0)
	}
	return f
}

// Close switches every fault off, ends the delays in progress, stops the
// Duration timers and waits for any that were already firing. Later Sets
// fail. Close may be called more than once.
func (in *Injector) Close() {
	in.mu.Lock()
	in.closed = true
	for k := range numKinds {
		in.clearLocked(k)
	}
	in.mu.Unlock()
	// Outside the lock: a timer that already fired is waiting for it in
	// expire.
	in.timers.Wait()
}

// expire is a Duration timer's end: it clears the fault unless a later Set
// or Clear already replaced this setting.
func (in *Injector) expire(k kind, a *armed) {
	defer in.timers.Done()
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.slots[k].CompareAndSwap(a, nil) {
		in.retire(a)
		in.active[k].Set(0)
	}
}

func (in *Injector) clearLocked(k kind) {
	in.retire(in.slots[k].Swap(nil))
	in.active[k].Set(0)
}

// retire ends a setting that is no longer published. Called with mu held.
func (in *Injector) retire(a *armed) {
	if a == nil {
		return
	}
	// A timer that Stop prevented will never call Done itself; one that
	// already fired calls it at the end of expire.
	if a.timer != nil && a.timer.Stop() {
		in.timers.Done()
	}
	close(a.stop)
}

// trigger returns the fault's setting when it hits this call, counting the
// injection, and nil when the fault is off or spares the call.
func (in *Injector) trigger(k kind) *armed {
	a := in.slots[k].Load()
	if a == nil || !a.fires() {
		return nil
	}
	in.injections[k].Inc()
	return a
}
