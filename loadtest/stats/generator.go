package stats

import (
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/parleychat/parley/loadtest/report"
)

// Lag keeps how late the scheduler dispatched each send: the generator's
// own delay, which is inside every measured latency (they run from the
// intended send time).
type Lag struct {
	mu   sync.Mutex
	hist *hdrhistogram.Histogram // microseconds
}

// NewLag returns an empty record of scheduling lag.
func NewLag() *Lag {
	return &Lag{hist: hdrhistogram.New(1, int64(time.Hour/time.Microsecond), 3)}
}

// Record adds one send dispatched d after its intended time.
func (r *Lag) Record(d time.Duration) {
	r.mu.Lock()
	_ = r.hist.RecordValue(max(int64(d/time.Microsecond), 0))
	r.mu.Unlock()
}

// saturationLag is the scheduling lag at p99 above which the run warns that
// the generator, not the server, set the pace.
const saturationLag = 10 * time.Millisecond

// Load marks where the load began, to tell the load's CPU from the
// setup's: sign-ups and connections cost a burst the load does not.
type Load struct {
	start time.Time
	cpu   float64
}

// BeginLoad marks the load's start now.
func BeginLoad() Load { return Load{start: time.Now(), cpu: cpuSeconds()} }

// Start is when the load began.
func (l Load) Start() time.Time { return l.start }

// Generator sums up the generator's own costs since the load began. Call
// it while the connections are still up: it counts them.
func (l Load) Generator(lag *Lag, c *Counters) report.GeneratorStats {
	cpu := cpuSeconds()
	var cores float64
	if d := time.Since(l.start).Seconds(); d > 0 {
		cores = (cpu - l.cpu) / d
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
		Saturated:        p99 > saturationLag || c.OutboxFull.Load() > 0,
		Connections:      int(c.Connections.Load()),
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
