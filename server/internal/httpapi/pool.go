package httpapi

import (
	"slices"
	"sync"
	"time"
)

// poolIdle is how long, at least, a pool's goroutine waits for a job
// before it ends (at most twice that).
const poolIdle = time.Second

// pool runs jobs on goroutines shared by all connections: the handling
// of the frames they read (handleFrame) and the writing of the frames
// queued for them (conn.writeQueued). Both grow a goroutine's stack (to
// 8 KiB or more for handling), and Go does not give a stack back while its
// goroutine waits. Done on goroutines of each connection's own, every idle
// connection would keep those stacks; done on a fresh goroutine each time,
// every job would pay for starting one and growing its stack. A pool's
// goroutines keep their stacks from job to job, and wait for work only a
// second or two: a quiet server has none. There are as many as jobs in hand at
// once (a job that finds none waiting starts one), bounded by nothing but
// the connections' own limits, so that a slow store call or a slow client
// of one connection never holds up another's.
//
// A job goes to the goroutine that waited least: with a trickle of jobs
// (an idle server's pings), the few most recent take them all and the
// rest, left waiting, end. Handed out in turn, as a shared channel does,
// a trickle kept every goroutine of the last burst alive.
type pool[J any] struct {
	run  func(J)
	mu   sync.Mutex
	idle []*poolWorker[J] // waiting for a job, the most recent last
	quit chan struct{}    // closed by stop
	once sync.Once
	wg   sync.WaitGroup
}

// poolWorker is a pool goroutine's inbox.
type poolWorker[J any] struct {
	jobs chan J // of one: it is sent a job only once taken off idle
}

func newPool[J any](run func(J)) *pool[J] {
	return &pool[J]{run: run, quit: make(chan struct{})}
}

// submit runs job on the goroutine that waited least, or on a new one.
func (p *pool[J]) submit(job J) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.jobs <- job
		return
	}
	p.mu.Unlock()
	p.wg.Add(1)
	go p.work(job)
}

// work runs job, then what comes, until it has been sent nothing for a
// whole poolIdle, or stop. The idle check is a tick, not a timer reset
// after every job, which on a busy pool cost more than the job's
// hand-over.
func (p *pool[J]) work(job J) {
	defer p.wg.Done()
	w := &poolWorker[J]{jobs: make(chan J, 1)}
	tick := time.NewTicker(poolIdle)
	defer tick.Stop()
	for ok := true; ok; job, ok = p.next(w, tick.C) {
		p.run(job)
	}
}

// next waits, among the idle, for w's next job. It reports false when w
// got none for a whole tick, or the pool stops, and has left the idle.
func (p *pool[J]) next(w *poolWorker[J], tick <-chan time.Time) (J, bool) {
	p.mu.Lock()
	p.idle = append(p.idle, w)
	p.mu.Unlock()
	ran := true // a job just ran: the first tick does not count
	for {
		select {
		case job := <-w.jobs:
			return job, true
		case <-tick:
			if ran {
				ran = false
				continue
			}
		case <-p.quit:
		}
		if p.leave(w) {
			var none J
			return none, false
		}
		// A submit took w off the idle just now: its job is on the way.
		return <-w.jobs, true
	}
}

// leave takes w off the idle, and reports false if a submit has already.
func (p *pool[J]) leave(w *poolWorker[J]) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := slices.Index(p.idle, w)
	if i < 0 {
		return false
	}
	p.idle = slices.Delete(p.idle, i, i+1)
	return true
}

// stop ends the pool's goroutines and waits for them. It is for the end
// of the server's life (Drain), once no connection submits any more; a
// second call does nothing more.
func (p *pool[J]) stop() {
	p.once.Do(func() { close(p.quit) })
	p.wg.Wait()
}
