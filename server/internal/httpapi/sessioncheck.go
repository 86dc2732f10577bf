package httpapi

import (
	"context"
	"slices"
	"time"

	"github.com/parleychat/parley/server/internal/chat"
)

// sessionCheckTimeout bounds one check's store round trip, so a store that
// hangs delays the next check rather than stopping them all.
const sessionCheckTimeout = 2 * time.Second

// CheckSessions closes, with 1008, the sockets whose session has ended on
// any replica: every Config.SessionCheck it asks the store, in one round
// trip and bypassing the session cache, which of the open sockets' sessions
// are still live. A session ended through this replica has its sockets
// closed at once by the handler that ended it; this is how the other
// replicas learn of it. A check the store fails is skipped (and logged):
// sockets stay open through a store outage.
//
// It runs until ctx ends; its caller owns the goroutine and waits for it.
func (s *Server) CheckSessions(ctx context.Context) {
	tick := time.NewTicker(s.cfg.SessionCheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.checkSessions(ctx)
		}
	}
}

// checkSessions makes one check.
func (s *Server) checkSessions(ctx context.Context) {
	s.checkMu.Lock()
	defer s.checkMu.Unlock()
	ids := s.openSessions()
	if len(ids) == 0 {
		return
	}
	checkCtx, cancel := context.WithTimeout(ctx, sessionCheckTimeout)
	defer cancel()
	st, err := s.auth.SessionStatuses(checkCtx, ids)
	if err != nil {
		if ctx.Err() == nil { // not merely stopped
			s.log.Warn("checking the sessions of open sockets", "err", err, "sessions", len(ids))
		}
		return
	}
	s.closeSessions(func(c *conn) bool {
		status, asked := st[c.session]
		return asked && status == chat.SessionUserDeleted
	}, reasonAccountDeleted)
	s.closeSessions(func(c *conn) bool {
		status, asked := st[c.session]
		return asked && status == chat.SessionEnded
	}, reasonSessionEnded)
}

// openSessions returns the distinct sessions of the open sockets, in the
// buffer of the last check (checkMu is held): a check every few seconds of thousands of
// sockets leaves no garbage, which on an idle server would be all there is.
func (s *Server) openSessions() []string {
	s.mu.Lock()
	ids := s.checked[:0]
	for c := range s.conns {
		ids = append(ids, c.session)
	}
	s.mu.Unlock()
	slices.Sort(ids)
	ids = slices.Compact(ids)
	s.checked = ids
	return ids
}

// closeSessions ends with 1008 and reason every open socket that match
// picks. The sockets close on their own goroutines; this does not wait.
func (s *Server) closeSessions(match func(*conn) bool, reason string) {
	s.mu.Lock()
	var ended []*conn
	for c := range s.conns {
		if match(c) {
			ended = append(ended, c)
		}
	}
	s.mu.Unlock()
	for _, c := range ended {
		c.endSession(reason)
	}
	if len(ended) > 0 {
		s.log.Info("closed the sockets of ended sessions", "reason", reason, "sockets", len(ended))
	}
}
