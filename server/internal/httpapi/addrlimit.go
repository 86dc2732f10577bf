package httpapi

import (
	"context"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// connsPerAddrRetry is the wait a refusal by the per-address cap asks for.
// A slot frees when one of the address's requests ends or one of its
// sockets closes, which nothing predicts; five seconds keeps a refused
// client's retries rare and cheap, and is what a reconnecting client waits
// anyway.
const connsPerAddrRetry = 5 * time.Second

// limitConnsPerAddr caps the requests one client address (clientAddr) has
// in flight on this server at Config.MaxConnsPerAddr. An open WebSocket is
// one of them for as long as it lives: its handler keeps the request's
// place for the connection (keepAddrSlot), which gives it back when it
// ends. A slow body counts until the read timeout cuts it. Idle
// keep-alives are not counted: the listener's idle timeout closes them.
// The cap is per replica, like every limit.
//
// It runs before routing and before any other work (credentials, body,
// store), so that refusing costs next to nothing, and after observe and
// recoverPanics, so that refusals are logged and counted like any answer
// (under the route "unmatched", being refused before routing; the
// per-limit count is parley_rate_limited_total{limit="conns_per_addr"}).
// The probes are never refused: a kubelet or load balancer probes from one
// address, and a 429 there would take a healthy replica out of service.
func (s *Server) limitConnsPerAddr() func(http.Handler) http.Handler {
	inFlight := &addrCounts{max: s.cfg.MaxConnsPerAddr, n: make(map[netip.Addr]int)}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if isProbe(r.URL.Path) {
				next.ServeHTTP(w, r)
				return
			}
			key := addrKey(s.clientAddr(r))
			if !inFlight.take(key) {
				s.writeError(w, r, s.refuse(limitConnsPerAddr, connsPerAddrRetry,
					"too many connections from your address; close some or try again later"))
				return
			}
			slot := &addrSlot{counts: inFlight, key: key}
			defer slot.end()
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), addrSlotKey{}, slot)))
		})
	}
}

// addrSlot is a request's place under the per-address cap, in its
// context. It is given back when the request ends, unless a handler kept
// it for something that outlives the request.
type addrSlot struct {
	counts *addrCounts
	key    netip.Addr
	kept   bool // read and written on the request's goroutine only
}

type addrSlotKey struct{}

func (s *addrSlot) end() {
	if !s.kept {
		s.counts.give(s.key)
	}
}

// keepAddrSlot takes over r's place under the per-address cap, for a
// WebSocket that outlives its upgrade request; release gives it back. A
// request the cap did not count (a handler served without the middleware)
// has none, and nil releases nothing.
func keepAddrSlot(r *http.Request) *addrSlot {
	slot, _ := r.Context().Value(addrSlotKey{}).(*addrSlot)
	if slot != nil {
		slot.kept = true
	}
	return slot
}

// release gives back a place that keepAddrSlot kept. Call it once.
func (s *addrSlot) release() {
	if s != nil {
		s.counts.give(s.key)
	}
}

func isProbe(path string) bool { return path == "/healthz" || path == "/readyz" }

// addrCounts counts what each address has in flight, up to max. An address
// with nothing in flight has no entry, so the map holds only the addresses
// connected now.
type addrCounts struct {
	max int
	mu  sync.Mutex
	n   map[netip.Addr]int
}

// take counts one more for a, unless a is at the cap.
func (c *addrCounts) take(a netip.Addr) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[a] >= c.max {
		return false
	}
	c.n[a]++
	return true
}

// give returns what take counted.
func (c *addrCounts) give(a netip.Addr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[a]--; c.n[a] <= 0 {
		delete(c.n, a)
	}
}
