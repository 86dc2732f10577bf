package systemtest

import (
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"
)

// This file holds the client side of the cluster tests: chat clients that
// behave as the protocol asks real ones to (reconnect to any replica, join
// with since, resend unacked messages under the same client id), and the
// ledger that checks what they sent against what they received.

// received is one message frame as a member saw it.
type received struct {
	seq      int64
	clientID string
}

// ack is where the server stored a message.
type ack struct {
	room string
	seq  int64
}

// pendingSend is a message sent and not yet acked.
type pendingSend struct {
	room     string
	inFlight bool      // sent on the current connection, answer awaited
	retryAt  time.Time // when a send refused as unavailable goes again
}

// chatClient is one user's connection, kept up across replicas.
type chatClient struct {
	name  string
	token string
	rooms []string
	pick  func() string // the WebSocket URL of a live replica

	mu   sync.Mutex
	conn *wsConn
	// joined counts the rooms joined on the current connection; sends wait
	// until every room is joined, as a client resuming a session would.
	joined   int
	got      map[string][]received // per room, in arrival order
	last     map[string]int64      // the newest seq seen per room
	pending  map[string]*pendingSend
	acked    map[string]ack // by client id
	reacked  int            // acks that disagreed with an earlier ack
	sent     int
	refused  map[string]int // error codes of refused sends
	downAt   time.Time
	resumes  []time.Duration // from losing a connection to joining every room again
	closedBy map[int]int     // close codes that ended connections
}

func newChatClient(name, token string, rooms []string, pick func() string) *chatClient {
	return &chatClient{
		name: name, token: token, rooms: rooms, pick: pick,
		got: make(map[string][]received), last: make(map[string]int64),
		pending: make(map[string]*pendingSend), acked: make(map[string]ack),
		refused: make(map[string]int), closedBy: make(map[int]int),
	}
}

// redialDelay is how long a client waits before dialling again after a
// refused dial, as a real client backs off instead of spinning while a
// replica is down. It is the client's behaviour, not a wait for a condition.
const redialDelay = 20 * time.Millisecond

// run keeps the client connected until stop closes, reconnecting to a live
// replica whenever a connection ends.
func (c *chatClient) run(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		conn, _, err := openWS(c.pick(), c.token, c.handle)
		if err != nil {
			select {
			case <-stop:
				return
			case <-time.After(redialDelay):
			}
			continue
		}
		c.serve(conn, stop)
	}
}

// serve joins every room, with since once the client has seen messages, and
// returns when the connection ends or stop closes. The connection's reader
// hands every frame to handle meanwhile.
func (c *chatClient) serve(conn *wsConn, stop <-chan struct{}) {
	c.mu.Lock()
	c.conn, c.joined = conn, 0
	joins := make([]map[string]any, 0, len(c.rooms))
	for _, room := range c.rooms {
		joins = append(joins, map[string]any{"type": "join", "room": room, "since": c.last[room]})
	}
	c.mu.Unlock()
	for _, j := range joins {
		if conn.write(j) != nil {
			break
		}
	}
	select {
	case <-stop: // the test ends it: not an outage to report
		conn.close()
	case <-conn.closed:
		c.lost(conn)
	}
}

func (c *chatClient) handle(f frame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch f.Type {
	case "joined":
		c.joined++
		if c.joined == len(c.rooms) && !c.downAt.IsZero() {
			c.resumes = append(c.resumes, time.Since(c.downAt))
			c.downAt = time.Time{}
		}
	case "message":
		c.got[f.Room] = append(c.got[f.Room], received{seq: f.Seq, clientID: f.ClientID})
		c.last[f.Room] = max(c.last[f.Room], f.Seq)
	case "ack":
		a := ack{room: f.Room, seq: f.Seq}
		if prev, ok := c.acked[f.ClientID]; ok && prev != a {
			c.reacked++
		}
		c.acked[f.ClientID] = a
		delete(c.pending, f.ClientID)
	case "error":
		c.refused[f.Code]++
		if p := c.pending[f.Ref]; p != nil {
			// unavailable, rate_limited: the message was not stored, or
			// was and will be acked again; either way it goes again.
			p.inFlight = false
			p.retryAt = time.Now().Add(100 * time.Millisecond)
		}
	}
}

// lost records the end of a connection: whatever was in flight is sent again
// on the next one. A frame that was not JSON is not counted here: if it was
// a message, the audit finds it missing.
func (c *chatClient) lost(conn *wsConn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == conn {
		c.conn = nil
	}
	c.closedBy[conn.code()]++
	if c.downAt.IsZero() {
		c.downAt = time.Now()
	}
	for _, p := range c.pending {
		p.inFlight = false
	}
}

// tick sends one new message (when fresh is true) and everything that is
// due again. It does nothing while the client is between connections or
// still joining.
func (c *chatClient) tick(fresh bool) {
	type out struct{ room, id string }
	var sends []out
	c.mu.Lock()
	conn := c.conn
	if conn == nil || c.joined < len(c.rooms) {
		c.mu.Unlock()
		return
	}
	now := time.Now()
	for id, p := range c.pending {
		if !p.inFlight && now.After(p.retryAt) {
			p.inFlight = true
			sends = append(sends, out{p.room, id})
		}
	}
	if fresh {
		id := fmt.Sprintf("%s-%d", c.name, c.sent)
		room := c.rooms[c.sent%len(c.rooms)]
		c.sent++
		c.pending[id] = &pendingSend{room: room, inFlight: true}
		sends = append(sends, out{room, id})
	}
	c.mu.Unlock()
	for _, s := range sends {
		if conn.write(map[string]any{"type": "send", "room": s.room, "client_id": s.id, "body": "ledger " + s.id}) != nil {
			return // the reader sees the connection end and marks it lost
		}
	}
}

// ackedCount counts the messages acked so far.
func (c *chatClient) ackedCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.acked)
}

// refusedCount counts the sends refused so far with the error code.
func (c *chatClient) refusedCount(code string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refused[code]
}

// connected reports whether the client has a connection on which it has
// joined every room.
func (c *chatClient) connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn != nil && c.joined == len(c.rooms)
}

// unacked counts the messages still waiting for an ack.
func (c *chatClient) unacked() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// caughtUp reports whether the client has seen each room up to last.
func (c *chatClient) caughtUp(last map[string]int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for room, seq := range last {
		if c.last[room] < seq {
			return false
		}
	}
	return true
}

// ledgerReport is what a scenario found.
type ledgerReport struct {
	Acked, Lost, Gaps, Duplicated, Reordered, Mismatched int
	Reconnects                                           int
	ResumeP50, ResumeP99                                 time.Duration
	Refused                                              map[string]int
	CloseCodes                                           map[int]int
}

func (r ledgerReport) String() string {
	return fmt.Sprintf("acked %d, lost %d, gaps %d, duplicated %d, reordered %d, mismatched %d; reconnects %d, resume p50 %v p99 %v; refused sends %v; closes %v",
		r.Acked, r.Lost, r.Gaps, r.Duplicated, r.Reordered, r.Mismatched, r.Reconnects,
		r.ResumeP50.Round(time.Millisecond), r.ResumeP99.Round(time.Millisecond), r.Refused, r.CloseCodes)
}

// audit checks every client's stream against every ack: each member must
// have received each acked message of its rooms exactly once, in seq order,
// carrying the client id it was acked for. Beyond the acks, a member must
// have every seq up to its room's final one (final), acked or not: a
// message stored for a sender that never heard back is still delivered.
func audit(clients []*chatClient, final map[string]int64) ledgerReport {
	rep := ledgerReport{Refused: make(map[string]int), CloseCodes: make(map[int]int)}
	// The ledger: room -> seq -> client id, from every ack.
	ledger := make(map[string]map[int64]string)
	var resumes []time.Duration
	for _, c := range clients {
		c.mu.Lock()
		for id, a := range c.acked {
			if ledger[a.room] == nil {
				ledger[a.room] = make(map[int64]string)
			}
			if other, taken := ledger[a.room][a.seq]; taken && other != id {
				rep.Mismatched++ // two messages acked with one seq
			}
			ledger[a.room][a.seq] = id
			rep.Acked++
		}
		rep.Mismatched += c.reacked
		resumes = append(resumes, c.resumes...)
		for code, n := range c.refused {
			rep.Refused[code] += n
		}
		for code, n := range c.closedBy {
			rep.CloseCodes[code] += n
		}
		c.mu.Unlock()
	}
	for _, c := range clients {
		c.mu.Lock()
		for _, room := range c.rooms {
			seen := make(map[int64]string)
			var highest int64
			for _, m := range c.got[room] {
				if _, dup := seen[m.seq]; dup {
					rep.Duplicated++
					continue
				}
				if m.seq < highest {
					rep.Reordered++
				}
				highest = max(highest, m.seq)
				seen[m.seq] = m.clientID
			}
			for seq := int64(1); seq <= final[room]; seq++ {
				if _, ok := seen[seq]; !ok {
					rep.Gaps++
				}
			}
			for seq, id := range ledger[room] {
				got, ok := seen[seq]
				switch {
				case !ok:
					rep.Lost++
				case got != id:
					rep.Mismatched++
				}
			}
		}
		c.mu.Unlock()
	}
	rep.Reconnects = len(resumes)
	rep.ResumeP50, rep.ResumeP99 = percentile(resumes, 50), percentile(resumes, 99)
	return rep
}

func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)-1)*p/100]
}

// wantClean fails the test unless the report shows nothing lost, repeated,
// reordered or mismatched.
func wantClean(t *testing.T, rep ledgerReport) {
	t.Helper()
	if rep.Acked == 0 {
		t.Fatalf("no message was acked: %s", rep)
	}
	if rep.Lost+rep.Gaps+rep.Duplicated+rep.Reordered+rep.Mismatched != 0 {
		t.Fatalf("ledger: %s", rep)
	}
}
