package httpapi

import (
	"sync"
)

// wsLimits are the per-user limits of the WebSocket endpoint, besides the
// per-user send limit (Server.sends) that REST shares. Like every limit they
// hold per replica.
type wsLimits struct {
	// joins are join and leave frames: presence changes, which every
	// member of a room hears of.
	joins *keyedLimiter
	// typing are typing frames, which the hub also merges per user and
	// room (chat.HubOptions.TypingInterval).
	typing *keyedLimiter
	// conns are the user's open connections.
	conns connCounts
}

func newWSLimits(cfg Config) *wsLimits {
	return &wsLimits{
		joins:  newKeyedLimiter(cfg.JoinRate, cfg.JoinBurst, cfg.Now),
		typing: newKeyedLimiter(cfg.TypingRate, int(2*cfg.TypingRate), cfg.Now),
		conns:  connCounts{max: cfg.MaxConnsPerUser, open: make(map[string]int)},
	}
}

// connCounts counts open connections by user, to cap them. A slot is taken
// before the upgrade and given back when the connection's handler returns,
// under one lock, so the count is exact however many upgrades race.
type connCounts struct {
	max int

	mu   sync.Mutex
	open map[string]int // users with no connection have no entry
}

// take counts a new connection of user unless the user has max already.
func (c *connCounts) take(user string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[user] >= c.max {
		return false
	}
	c.open[user]++
	return true
}

// give uncounts a connection that take counted.
func (c *connCounts) give(user string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[user] <= 1 {
		delete(c.open, user)
		return
	}
	c.open[user]--
}
