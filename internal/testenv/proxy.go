package testenv

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy forwards TCP connections to a real service so that a test can take
// the service away and give it back, or slow it down, without touching the
// machine's shared server, which other tests are using.
type Proxy struct {
	ln      net.Listener
	target  string
	wg      sync.WaitGroup
	latency atomic.Int64 // nanoseconds each chunk is held back; read once per chunk

	mu    sync.Mutex
	links map[*link]struct{}
	down  bool
}

// link is one forwarded connection: the client's to the proxy and the
// proxy's to the target.
type link struct {
	client, server net.Conn
	// cut is closed when Cut drops the link, so that chunks held back for
	// latency are dropped at once instead of when they fall due.
	cut chan struct{}
}

// StartProxy listens on a loopback port and forwards to target (host:port).
// It stops when the test ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: proxy: %v", err)
	}
	p := &Proxy{ln: ln, target: target, links: make(map[*link]struct{})}
	p.wg.Go(p.serve)
	t.Cleanup(p.close)
	return p
}

// Addr is where clients connect instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut drops every connection and drops new ones as they come, as a service
// that went away would.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for l := range p.links {
		l.client.Close()
		l.server.Close()
		close(l.cut)
	}
	// Forgotten here rather than when their pipes end, so a second Cut
	// does not close l.cut again.
	clear(p.links)
}

// Restore forwards new connections again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// SetLatency holds every chunk forwarded, either way, for d before passing it
// on, as a distant or overloaded service would answer late. It applies to the
// connections already open as well as to new ones; 0 forwards at once again.
// A chunk never overtakes an earlier one, so bytes keep their order even
// while the latency changes.
func (p *Proxy) SetLatency(d time.Duration) { p.latency.Store(int64(d)) }

func (p *Proxy) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() { p.forward(client) })
	}
}

func (p *Proxy) forward(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	l := &link{client: client, server: server, cut: make(chan struct{})}
	if !p.track(l) {
		client.Close()
		server.Close()
		return
	}
	var pipes sync.WaitGroup
	pipes.Go(func() { p.pipe(server, client, l.cut) })
	pipes.Go(func() { p.pipe(client, server, l.cut) })
	pipes.Wait()
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
}

// track records a forwarded link unless the proxy is cut.
func (p *Proxy) track(l *link) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return false
	}
	p.links[l] = struct{}{}
	return true
}

// chunk is what one read from a connection returned, and the time it may be
// passed on.
type chunk struct {
	data []byte
	due  time.Time
}

// pipe copies src to dst until src ends, then closes dst. Reading and writing
// are apart so that latency delays each chunk by the same d from when it was
// read: a chunk that arrives while an earlier one is held back waits out its
// own latency alongside, not after it.
func (p *Proxy) pipe(dst, src net.Conn, cut <-chan struct{}) {
	chunks := make(chan chunk, 64)
	var reader sync.WaitGroup
	reader.Go(func() {
		defer close(chunks)
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				due := time.Now().Add(time.Duration(p.latency.Load()))
				chunks <- chunk{data: bytes.Clone(buf[:n]), due: due}
			}
			if err != nil {
				return
			}
		}
	})

	// Once dst fails the rest is drained unwritten, so the reader never
	// blocks; closing dst ends the other direction, whose closing src then
	// ends this reader.
	failed := false
	for c := range chunks {
		if failed {
			continue
		}
		if !waitUntil(c.due, cut) {
			failed = true
			continue
		}
		if _, err := dst.Write(c.data); err != nil {
			failed = true
			dst.Close()
		}
	}
	dst.Close()
	reader.Wait()
}

// waitUntil returns once due has come, true, or once cut is closed, false.
func waitUntil(due time.Time, cut <-chan struct{}) bool {
	wait := time.Until(due)
	if wait <= 0 {
		return true
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-cut:
		return false
	}
}

func (p *Proxy) close() {
	p.ln.Close()
	p.Cut()
	p.wg.Wait()
}
