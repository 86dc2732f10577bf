package httpapi

import (
	"math/rand/v2"
	"time"

	"github.com/gorilla/websocket"
)

// keepAliveTick is the longest step of the keepalive loop: how late a ping
// or a token's expiry may be seen. It is short so that each step has few
// pings to send (a 25-second interval over 5,000 sockets is 20 a step):
// pings sent in a burst would each find no writer free and start one.
const keepAliveTick = 100 * time.Millisecond

// keepAlive pings each open connection every PingInterval and closes, with
// 1008, those whose token has expired. One loop serves every connection,
// so that a connection has no timer of its own. It runs while there are
// connections: track starts it with the first, it ends once the last has
// gone, and connWG counts it, so Drain waits for it too.
func (s *Server) keepAlive() {
	defer s.connWG.Done()
	tick := time.NewTicker(min(s.cfg.PingInterval/4, keepAliveTick))
	defer tick.Stop()
	var open []*conn
	for range tick.C {
		now, clock := time.Now(), s.now()
		s.mu.Lock()
		if len(s.conns) == 0 {
			s.keeping = false
			s.mu.Unlock()
			return
		}
		open = open[:0]
		for c := range s.conns {
			open = append(open, c)
		}
		s.mu.Unlock()
		for _, c := range open {
			if !now.Before(c.nextPing) {
				c.nextPing = now.Add(s.cfg.PingInterval)
				c.ping()
			}
			if !clock.Before(c.expires) {
				c.closeWith(websocket.ClosePolicyViolation, "token expired")
			}
		}
		clear(open) // keep no connection alive until the next tick
	}
}

// firstPing is when a new connection's first ping is due: a random point
// of its first interval, so that sockets opened together (a reconnect
// storm) are not pinged together ever after.
func (s *Server) firstPing() time.Time {
	return time.Now().Add(s.cfg.PingInterval/2 + rand.N(s.cfg.PingInterval/2+1))
}
