package chat

import (
	"context"
	"time"
)

// sequence is where a room's messages stand on this replica. Messages may
// arrive out of order or twice (from this replica, the broker, backfills
// and catch-ups); accept puts them in seq order and drops repeats, so that
// members see each seq once. A message that arrives ahead of a gap waits in
// pending, and if the gap is still open after GapWait, the hub reads it from
// the store, which holds every acked message. The room's lock guards it.
type sequence struct {
	loaded  bool  // last is known; until then every message waits in pending
	last    int64 // seq of the newest message delivered to members
	highest int64 // newest seq known to exist, delivered or not
	pending map[int64]pendingMessage

	gapTimer    *time.Timer // armed while a gap is open and no backfill runs
	timerGen    uint64
	backfilling bool
}

// pendingMessage is a message that arrived ahead of a gap, with the context
// of its delivery.
type pendingMessage struct {
	msg Message
	ctx context.Context
}

// maxPending bounds the out-of-order messages a room keeps while waiting for
// a gap to close. Past it the hub keeps only the highest seq it has seen and
// reads everything from the store, which holds every message it could drop.
const maxPending = 1024

// Deliver hands a stored message to the room's members here and, through the
// bus, to those on other replicas. ctx carries the sender's trace.
func (h *Hub) Deliver(ctx context.Context, msg Message) {
	h.deliverHere(ctx, msg)
	h.publishCtx(ctx, Event{Kind: EventMessage, Room: msg.Room, Message: msg})
}

// deliverHere hands a stored message to the room's members on this replica,
// if it has any.
func (h *Hub) deliverHere(ctx context.Context, msg Message) {
	r := h.lookup(msg.Room)
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.accept(ctx, msg)
}

// startSequence sets last to the newest seq the store held when the room
// loaded, and delivers what arrived meanwhile. r.mu is held.
func (r *room) startSequence(last int64) {
	r.seq.loaded = true
	r.seq.last = last
	r.seq.highest = max(r.seq.highest, last)
	r.drain()
}

// accept is the single path by which messages reach members; ctx carries
// the trace of the delivery, if it has one. r.mu is held.
func (r *room) accept(ctx context.Context, msg Message) {
	s := &r.seq
	s.highest = max(s.highest, msg.Seq)
	switch {
	case s.loaded && msg.Seq <= s.last:
		return // delivered already
	case s.loaded && msg.Seq == s.last+1:
		s.last = msg.Seq
		r.fanout(ctx, msg)
	case len(s.pending) < maxPending:
		s.pending[msg.Seq] = pendingMessage{msg, ctx}
	}
	if s.loaded {
		r.drain()
	}
}

// learnHighest records that the store holds seqs up to seq: a room that is
// behind treats it like a message that arrived ahead of a gap. r.mu is held.
func (r *room) learnHighest(seq int64) {
	if seq > r.seq.highest {
		r.seq.highest = seq
		if r.seq.loaded {
			r.drain()
		}
	}
}

// drain delivers pending messages that continue the sequence and, if a gap
// remains, arms the timer that will backfill it. r.mu is held.
func (r *room) drain() {
	s := &r.seq
	for seq := range s.pending {
		if seq <= s.last {
			delete(s.pending, seq)
		}
	}
	for {
		p, ok := s.pending[s.last+1]
		if !ok {
			break
		}
		delete(s.pending, p.msg.Seq)
		s.last = p.msg.Seq
		r.fanout(p.ctx, p.msg)
	}
	if s.highest > s.last {
		r.armTimer()
	} else {
		r.stopTimer()
	}
}

// fanout encodes msg once and offers the same bytes to every member that
// does not have it yet. r.mu is held.
func (r *room) fanout(ctx context.Context, msg Message) {
	var frame Frame
	for _, m := range r.list {
		if msg.Seq <= m.floor {
			continue
		}
		if frame.Data == nil {
			frame = Frame{Data: r.hub.codec.Message(msg), Kind: "message", Arrived: msg.TS, Ctx: ctx}
		}
		r.offer(m, frame)
	}
}

// chaseGap arms the gap timer if seqs are known that members have not had.
// r.mu is held.
func (r *room) chaseGap() {
	if r.seq.highest > r.seq.last {
		r.armTimer()
	}
}

func (r *room) armTimer() {
	s := &r.seq
	if s.gapTimer != nil || s.backfilling {
		return
	}
	// The generation tells a timer that fires late, after it was stopped or
	// replaced, that it is no longer wanted.
	s.timerGen++
	gen := s.timerGen
	s.gapTimer = time.AfterFunc(r.hub.opts.GapWait, func() { r.startBackfill(gen) })
}

func (r *room) stopTimer() {
	if r.seq.gapTimer != nil {
		r.seq.gapTimer.Stop()
		r.seq.gapTimer = nil
	}
}

func (r *room) startBackfill(gen uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &r.seq
	if s.gapTimer == nil || s.timerGen != gen {
		return // stopped, or replaced by a newer timer
	}
	s.gapTimer = nil
	if s.backfilling || s.highest <= s.last || len(r.members) == 0 || r.hub.ctx.Err() != nil {
		return
	}
	s.backfilling = true
	r.hub.stats.backfills.Add(1)
	r.hub.wg.Add(1)
	go r.backfill()
}

// backfill reads the missing messages from the store, which has every
// message that was ever acked, and delivers them through accept. A store
// that fails is retried with backoff until the gap closes, the room empties
// or the hub closes.
func (r *room) backfill() {
	defer r.hub.wg.Done()
	ctx := r.hub.ctx
	retry := 50 * time.Millisecond
	for {
		r.mu.Lock()
		cursor, highest, members := r.seq.last, r.seq.highest, len(r.members)
		if highest <= cursor || members == 0 || ctx.Err() != nil {
			r.seq.backfilling = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()

		limit := int(min(int64(r.hub.opts.ReplayPage), highest-cursor))
		msgs, _, err := r.hub.store.History(ctx, r.id, Page{Cursor: cursor, Limit: limit})
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(retry):
				retry = min(retry*2, 5*time.Second)
			}
			continue
		}
		r.mu.Lock()
		r.backfilled(highest, msgs)
		r.mu.Unlock()
	}
}

// backfilled delivers msgs, which a backfill read from the store past its
// cursor while highest was the newest seq known. r.mu is held.
func (r *room) backfilled(highest int64, msgs []Message) {
	s := &r.seq
	switch {
	case len(msgs) == 0:
		// Nothing past the cursor is stored, so whatever announced seqs up
		// to highest was not a stored message (a bad broker event): forget
		// those claims. Moving last up to them instead would make every
		// real message below them look delivered. Claims made during the
		// read get a read of their own.
		for seq := range s.pending {
			if seq <= highest {
				delete(s.pending, seq)
			}
		}
		if s.highest == highest {
			s.highest = s.last
			for seq := range s.pending {
				s.highest = max(s.highest, seq)
			}
		}
	case msgs[0].Seq > s.last+1:
		// The store no longer keeps the start of the gap (bounded in-memory
		// history): skip what cannot be had.
		s.last = msgs[0].Seq - 1
	}
	r.hub.stats.backfilled.Add(int64(len(msgs)))
	for _, msg := range msgs {
		r.accept(context.Background(), msg) // no trace: a store read
	}
}
