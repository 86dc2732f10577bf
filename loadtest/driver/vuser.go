package driver

import (
	"cmp"
	"context"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/parleychat/parley/loadtest/ledger"
	"github.com/parleychat/parley/loadtest/stats"
	"github.com/parleychat/parley/loadtest/wait"
	"github.com/parleychat/parley/loadtest/wire"
)

// room is a chat room of the run and the users in it.
type room struct {
	id      string
	members []int32 // user indexes, the sender included in every send's recipients
	next    int     // the next member to send, round robin (the scheduler's alone)
}

// vuser is one virtual user: a connection that joins its rooms, sends what
// the scheduler hands it, reads everything the server sends, and comes back
// with since after losing its connection.
type vuser struct {
	idx      int32
	token    string
	rooms    []*room
	ledger   *ledger.Ledger
	dial     func(ctx context.Context, token string) (*wire.Conn, error)
	counters *stats.Counters

	mu      sync.Mutex
	sess    *session           // the current connection; nil while disconnected
	lastSeq map[string]int64   // per room, the last seq seen: the since of the next join
	replay  map[string]int64   // per room, seqs up to this arrived as history on the last join
	unacked map[string]pending // sends not yet answered, by client_id: resent after a reconnect
	sends   uint64             // numbers sends, to resend in order
	joined  chan struct{}      // closed once the first connection has joined every room
}

// session is one connection and its send queue. The queue belongs to the
// connection, so nothing queued for a lost connection is written to the
// next one: what was unanswered is resent from unacked instead, once.
type session struct {
	conn   *wire.Conn
	outbox chan []byte
	done   chan struct{} // closed when the connection has ended

	// pacer spaces the frames the server refused as rate_limited; new
	// sends are not held by it (the open model sends each at its time).
	pacer wire.Pacer
	wake  chan struct{} // one slot: a frame was added to later

	mu    sync.Mutex
	later []retry // refused frames to write again, each once due
	// joins are the joins written and not yet answered, oldest first. The
	// server answers a connection's frames in order, and a refused join's
	// error names only its type (ref "join"), so the oldest is the one
	// refused.
	joins []*join
}

// join is a join frame, and how often the server has refused it.
type join struct {
	room  string
	frame []byte
	tries int
}

// retry is a frame to write again at due: a join (answered in order, so
// queued among the joins again when written) or a send.
type retry struct {
	due   time.Time
	frame []byte
	join  *join
}

// maxResends is how many rate_limited refusals of one frame are waited
// out; one more fails a send (ledger: rate_limited) and leaves a join
// undone. Pacing makes a second refusal rare.
const maxResends = 10

// outboxSize bounds each connection's queue: a few hundred bytes a slot,
// and 15,000 connections.
const outboxSize = 64

// pending is a send not yet answered.
type pending struct {
	n     uint64
	frame []byte
	tries int // rate_limited refusals waited out
}

func newVUser(idx int32, token string, l *ledger.Ledger, counters *stats.Counters, dial func(context.Context, string) (*wire.Conn, error)) *vuser {
	return &vuser{
		idx: idx, token: token, ledger: l, dial: dial, counters: counters,
		lastSeq: map[string]int64{}, replay: map[string]int64{}, unacked: map[string]pending{},
		joined: make(chan struct{}),
	}
}

// send hands a message to the user's connection. The frame is kept until
// the server answers it, so that a reconnect resends it with the same
// client_id (the server stores it once).
func (u *vuser) send(clientID string, frame []byte, typing []byte) {
	u.mu.Lock()
	u.sends++
	u.unacked[clientID] = pending{n: u.sends, frame: frame}
	s := u.sess
	u.mu.Unlock()
	if s == nil {
		return // resent on reconnect
	}
	if typing != nil {
		u.enqueue(s, typing)
	}
	u.enqueue(s, frame)
}

// enqueue queues a frame on a connection. A full queue means the
// connection cannot keep up, which the run reports; the wait ends when
// the connection does (a failed write closes it), and an unsent message
// is then resent from unacked.
func (u *vuser) enqueue(s *session, frame []byte) {
	select {
	case s.outbox <- frame:
		return
	default:
	}
	u.counters.OutboxFull.Add(1)
	select {
	case s.outbox <- frame:
	case <-s.done:
	}
}

// answered forgets a send the server acked or refused, and reports whether
// it was waiting for an answer.
func (u *vuser) answered(clientID string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	_, ok := u.unacked[clientID]
	delete(u.unacked, clientID)
	return ok
}

// run keeps the user connected until ctx ends, reconnecting with backoff
// and jitter after every loss.
func (u *vuser) run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	first := true
	for ctx.Err() == nil {
		conn, err := u.dial(ctx, u.token)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			u.ledger.ConnectError()
			pause := backoff/2 + rand.N(backoff)
			if d, ok := wire.RetryAfterOf(err); ok {
				// Refused by a limit on connections: not before the
				// server says, and jittered, as every user it refused
				// was told the same.
				pause = max(pause, d+rand.N(d/10+1))
			}
			_ = wait.Sleep(ctx, pause)
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		u.counters.Connections.Add(1)
		u.serve(ctx, conn, first)
		first = false
		u.counters.Connections.Add(-1)
	}
}

// serve joins the rooms (with since after the first time), resends what was
// unanswered, and then reads until the connection ends.
func (u *vuser) serve(ctx context.Context, conn *wire.Conn, first bool) {
	s := &session{conn: conn, outbox: make(chan []byte, outboxSize), done: make(chan struct{}), wake: make(chan struct{}, 1)}
	u.mu.Lock()
	var opening [][]byte
	for _, r := range u.rooms {
		var since *int64
		if !first {
			s := u.lastSeq[r.id]
			since = &s
		}
		j := &join{room: r.id, frame: wire.JoinFrame(r.id, since)}
		s.joins = append(s.joins, j) // before the writer starts: no lock needed
		opening = append(opening, j.frame)
	}
	resend := slices.SortedFunc(maps.Values(u.unacked), func(a, b pending) int { return cmp.Compare(a.n, b.n) })
	for _, p := range resend {
		opening = append(opening, p.frame)
	}
	u.sess = s
	u.mu.Unlock()

	var wg sync.WaitGroup
	wg.Go(func() { u.write(ctx, s, opening) })
	joins := len(u.rooms)
	for {
		f, err := conn.Read()
		if err != nil {
			break
		}
		u.handle(s, f, time.Now(), &joins)
	}
	u.mu.Lock()
	u.sess = nil
	u.mu.Unlock()
	close(s.done)
	conn.Close()
	wg.Wait()
}

// write sends the opening frames, then whatever the scheduler queues and
// the refused frames as they fall due, until the connection ends. A failed
// write closes the connection, so that the reader ends too and the user
// reconnects; so does the end of the run, which saves a goroutine per
// connection for watching it.
func (u *vuser) write(ctx context.Context, s *session, opening [][]byte) {
	for _, f := range opening {
		if s.conn.Write(f) != nil {
			s.conn.Close()
			return
		}
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			s.conn.Close()
			return
		case <-s.done:
			return
		case f := <-s.outbox:
			if s.conn.Write(f) != nil {
				s.conn.Close()
				return
			}
			continue
		case <-s.wake:
		case <-timer.C:
		}
		due, next := s.takeDue(time.Now())
		for _, r := range due {
			if s.conn.Write(r.frame) != nil {
				s.conn.Close()
				return
			}
		}
		if !next.IsZero() {
			timer.Reset(time.Until(next))
		}
	}
}

// resendAt queues a refused frame to be written again at due.
func (s *session) resendAt(due time.Time, frame []byte, j *join) {
	s.mu.Lock()
	s.later = append(s.later, retry{due: due, frame: frame, join: j})
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default: // the writer has a wake-up coming already
	}
}

// takeDue takes the refused frames due by now, earliest first, and says
// when the next of the others falls due (zero if none is left). A join
// taken is unanswered again from now on, the newest such.
func (s *session) takeDue(now time.Time) (due []retry, next time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	slices.SortFunc(s.later, func(a, b retry) int { return a.due.Compare(b.due) })
	n := 0
	for n < len(s.later) && !s.later[n].due.After(now) {
		if j := s.later[n].join; j != nil {
			s.joins = append(s.joins, j)
		}
		n++
	}
	due = slices.Clone(s.later[:n])
	s.later = slices.Delete(s.later, 0, n)
	if len(s.later) > 0 {
		next = s.later[0].due
	}
	return due, next
}

// answerJoin takes the oldest unanswered join, which an error frame just
// read answers; nil if there is none.
func (s *session) answerJoin() *join {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.joins) == 0 {
		return nil
	}
	j := s.joins[0]
	s.joins = s.joins[1:]
	return j
}

// joined takes the unanswered join of room, which a joined frame answers.
func (s *session) joined(room string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.IndexFunc(s.joins, func(j *join) bool { return j.room == room }); i >= 0 {
		s.joins = slices.Delete(s.joins, i, i+1)
	}
}

// joinRefused deals with an error answering a join: a rate_limited one is
// written again after the wait the server asks for, up to maxResends
// times; other refusals leave the room unjoined (the setup then times out
// saying which user could not join).
func (u *vuser) joinRefused(s *session, f wire.In, at time.Time) {
	j := s.answerJoin()
	if j == nil || f.Code != wire.CodeRateLimited || j.tries >= maxResends {
		return
	}
	j.tries++
	u.resendLater(s, f, at, j.frame, j)
}

// sendRefused deals with an error answering a send: a rate_limited one is
// written again with the same client_id after the wait the server asks
// for, up to maxResends times, and reports true; its ack latency still
// runs from the intended send time, so that the wait is measured, not
// hidden. Otherwise it reports false: the send failed.
func (u *vuser) sendRefused(s *session, f wire.In, at time.Time) bool {
	if f.Code != wire.CodeRateLimited {
		return false
	}
	u.mu.Lock()
	p, ok := u.unacked[f.Ref]
	again := ok && p.tries < maxResends
	if again {
		p.tries++
		u.unacked[f.Ref] = p
	}
	u.mu.Unlock()
	if again {
		u.resendLater(s, f, at, p.frame, nil)
	}
	return again
}

// resendLater queues frame to be written again after the refusal f's wait
// (a second when it names none), in a slot of the session's pacer.
func (u *vuser) resendLater(s *session, f wire.In, at time.Time, frame []byte, j *join) {
	wait := wire.Seconds(f.RetryAfter)
	if wait <= 0 {
		wait = time.Second
	}
	d := s.pacer.Refused(at, wait)
	u.counters.FramesPaced.Refused()
	u.counters.FramesPaced.Waited(d)
	s.resendAt(at.Add(d), frame, j)
}

func (u *vuser) handle(s *session, f wire.In, at time.Time, joins *int) {
	switch f.Type {
	case wire.TypeMessage:
		u.mu.Lock()
		replayed := f.Seq <= u.replay[f.Room]
		if f.Seq > u.lastSeq[f.Room] {
			u.lastSeq[f.Room] = f.Seq
		}
		u.mu.Unlock()
		if !replayed {
			u.counters.LiveMessagesRead.Add(1)
		}
		u.ledger.Delivered(u.idx, f.Room, f.ClientID, f.Seq, at, replayed)
	case wire.TypeAck:
		u.counters.AcksRead.Add(1)
		u.answered(f.ClientID)
		u.ledger.Acked(f.ClientID, at)
	case wire.TypeError:
		// ref is the client_id of a refused send, or the type of
		// another refused frame.
		switch {
		case f.Ref == "join":
			u.joinRefused(s, f, at)
		case u.sendRefused(s, f, at):
		case u.answered(f.Ref):
			u.ledger.Failed(f.Ref, f.Code, at)
		}
	case wire.TypeJoined:
		s.joined(f.Room)
		u.mu.Lock()
		u.replay[f.Room] = f.LastSeq
		if _, seen := u.lastSeq[f.Room]; !seen {
			u.lastSeq[f.Room] = f.LastSeq // the first join starts at the present
		}
		u.mu.Unlock()
		if *joins--; *joins == 0 {
			select {
			case <-u.joined:
			default:
				close(u.joined)
			}
		}
	}
}

// dropConnection closes the user's connection, if it has one, which then
// comes back with since, as after a network blip.
func (u *vuser) dropConnection() {
	u.mu.Lock()
	s := u.sess
	u.mu.Unlock()
	if s != nil {
		s.conn.Close()
	}
}
