package httpapi

import (
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
type pool[J any] struct {
	run  func(J)
	jobs chan J        // unbuffered: a job goes to a goroutine that waits for one
	quit chan struct{} // closed by stop
	once sync.Once
	wg   sync.WaitGroup
}

func newPool[J any](run func(J)) *pool[J] {
	return &pool[J]{run: run, jobs: make(chan J), quit: make(chan struct{})}
}

// submit runs job on a waiting goroutine, or on a new one.
func (p *pool[J]) submit(job J) {
	select {
	case p.jobs <- job:
	default:
		p.wg.Add(1)
		go p.work(job)
	}
}

// work runs job, then what comes, until it has run nothing for a whole
// poolIdle, or stop. The idle check is a tick, not a timer reset after
// every job, which on a busy pool cost more than the job's hand-over.
func (p *pool[J]) work(job J) {
	defer p.wg.Done()
	tick := time.NewTicker(poolIdle)
	defer tick.Stop()
	p.run(job)
	ran := true
	for {
		select {
		case next := <-p.jobs:
			p.run(next)
			ran = true
		case <-tick.C:
			if !ran {
				return
			}
			ran = false
		case <-p.quit:
			return
		}
	}
}

// stop ends the pool's goroutines and waits for them. It is for the end
// of the server's life (Drain), once no connection submits any more; a
// second call does nothing more.
func (p *pool[J]) stop() {
	p.once.Do(func() { close(p.quit) })
	p.wg.Wait()
}
