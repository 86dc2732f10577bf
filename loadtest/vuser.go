package main

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/parleychat/parley/loadtest/ledger"
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
	idx    int32
	token  string
	rooms  []*room
	ledger *ledger.Ledger
	dial   func(ctx context.Context, token string) (*wire.Conn, error)
	stats  *driverStats

	mu      sync.Mutex
	conn    *wire.Conn       // nil while disconnected
	lastSeq map[string]int64 // per room, the last seq seen: the since of the next join
	replay  map[string]int64 // per room, seqs up to this arrived as history on the last join
	unacked []pending        // sends not yet answered, in order: resent after a reconnect
	outbox  chan []byte      // frames for the writer; bounded
	joined  chan struct{}    // closed once the first connection has joined every room
	drop    chan struct{}    // a signal to drop the connection (reconnect storms)
}

// pending is a send not yet answered.
type pending struct {
	clientID string
	frame    []byte
}

func newVUser(idx int32, token string, l *ledger.Ledger, stats *driverStats, dial func(context.Context, string) (*wire.Conn, error)) *vuser {
	return &vuser{
		idx: idx, token: token, ledger: l, dial: dial, stats: stats,
		lastSeq: map[string]int64{}, replay: map[string]int64{},
		outbox: make(chan []byte, 256), joined: make(chan struct{}), drop: make(chan struct{}, 1),
	}
}

// send hands a message to the user's connection. The frame is kept until
// the server answers it, so that a reconnect resends it with the same
// client_id (the server stores it once).
func (u *vuser) send(clientID string, frame []byte, typing []byte) {
	u.mu.Lock()
	u.unacked = append(u.unacked, pending{clientID, frame})
	connected := u.conn != nil
	u.mu.Unlock()
	if !connected {
		return // resent on reconnect
	}
	if typing != nil {
		u.enqueue(typing)
	}
	u.enqueue(frame)
}

// enqueue never blocks the scheduler for long: a full outbox means this
// connection cannot keep up, which the run reports.
func (u *vuser) enqueue(frame []byte) {
	select {
	case u.outbox <- frame:
	default:
		u.stats.outboxFull.Add(1)
		u.outbox <- frame
	}
}

// answered forgets a send the server acked or refused, and reports whether
// it was waiting for an answer.
func (u *vuser) answered(clientID string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	i := slices.IndexFunc(u.unacked, func(p pending) bool { return p.clientID == clientID })
	if i >= 0 {
		u.unacked = slices.Delete(u.unacked, i, i+1)
	}
	return i >= 0
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
			sleep(ctx, backoff/2+rand.N(backoff))
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		u.stats.connections.Add(1)
		if !first {
			u.stats.reconnects.Add(1)
		}
		u.serve(ctx, conn, first)
		first = false
		u.stats.connections.Add(-1)
	}
}

// serve joins the rooms (with since after the first time), resends what was
// unanswered, and then reads until the connection ends.
func (u *vuser) serve(ctx context.Context, conn *wire.Conn, first bool) {
	u.mu.Lock()
	var frames [][]byte
	for _, r := range u.rooms {
		var since *int64
		if !first {
			s := u.lastSeq[r.id]
			since = &s
		}
		frames = append(frames, wire.JoinFrame(r.id, since))
	}
	for _, p := range u.unacked {
		frames = append(frames, p.frame)
	}
	u.conn = conn
	u.mu.Unlock()

	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { u.write(conn, frames, done) })
	wg.Go(func() {
		select {
		case <-ctx.Done():
		case <-u.drop:
		case <-done:
			return
		}
		conn.Close()
	})
	joins := len(u.rooms)
	for {
		f, err := conn.Read()
		if err != nil {
			break
		}
		u.handle(f, time.Now(), &joins)
	}
	u.mu.Lock()
	u.conn = nil
	u.mu.Unlock()
	close(done)
	conn.Close()
	wg.Wait()
}

// write sends the opening frames, then whatever the scheduler queues, until
// the connection ends.
func (u *vuser) write(conn *wire.Conn, opening [][]byte, done <-chan struct{}) {
	for _, f := range opening {
		if conn.Write(f) != nil {
			return
		}
	}
	for {
		select {
		case <-done:
			return
		case f := <-u.outbox:
			if conn.Write(f) != nil {
				return // the reader sees the loss; unanswered sends are resent
			}
		}
	}
}

func (u *vuser) handle(f wire.In, at time.Time, joins *int) {
	switch f.Type {
	case wire.TypeMessage:
		u.mu.Lock()
		replayed := f.Seq <= u.replay[f.Room]
		if f.Seq > u.lastSeq[f.Room] {
			u.lastSeq[f.Room] = f.Seq
		}
		u.mu.Unlock()
		u.ledger.Delivered(u.idx, f.Room, f.ClientID, f.Seq, at, replayed)
		u.stats.deliveries.Add(1)
	case wire.TypeAck:
		u.answered(f.ClientID)
		u.ledger.Acked(f.ClientID, at)
	case wire.TypeError:
		// ref is the client_id of a refused send, or the type of
		// another refused frame.
		if u.answered(f.Ref) {
			u.ledger.Failed(f.Ref, f.Code, at)
		} else {
			u.stats.otherErrors.Add(1)
		}
	case wire.TypeJoined:
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

// dropConnection closes the user's connection, which then comes back with
// since, as after a network blip.
func (u *vuser) dropConnection() {
	select {
	case u.drop <- struct{}{}:
	default:
	}
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
