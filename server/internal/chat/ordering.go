package chat

import (
	"context"
	"time"
)

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
// if it has any. Messages may arrive out of order or twice (from this
// replica, the broker and backfills); members still see each seq once and in
// order.
func (h *Hub) deliverHere(ctx context.Context, msg Message) {
	r := h.lookup(msg.Room)
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.accept(ctx, msg)
}

// pendingMessage is a message that arrived ahead of a gap, with the context
// of its delivery.
type pendingMessage struct {
	msg Message
	ctx context.Context
}

// accept is the single path by which messages reach members; ctx carries
// the trace of the delivery, if it has one. r.mu is held.
func (r *room) accept(ctx context.Context, msg Message) {
	r.highest = max(r.highest, msg.Seq)
	switch {
	case r.loaded && msg.Seq <= r.last:
		return // delivered already
	case r.loaded && msg.Seq == r.last+1:
		r.last = msg.Seq
		r.fanout(ctx, msg)
	case len(r.pending) < maxPending:
		r.pending[msg.Seq] = pendingMessage{msg, ctx}
	}
	if r.loaded {
		r.drain()
	}
}

// drain delivers pending messages that continue the sequence and, if a gap
// remains, arms the timer that will backfill it. r.mu is held.
func (r *room) drain() {
	for seq := range r.pending {
		if seq <= r.last {
			delete(r.pending, seq)
		}
	}
	for {
		p, ok := r.pending[r.last+1]
		if !ok {
			break
		}
		delete(r.pending, p.msg.Seq)
		r.last = p.msg.Seq
		r.fanout(p.ctx, p.msg)
	}
	if r.highest > r.last {
		r.armTimer()
	} else {
		r.stopTimer()
	}
}

// fanout encodes msg once and offers the same bytes to every member that
// does not have it yet. r.mu is held.
func (r *room) fanout(ctx context.Context, msg Message) {
	var frame Frame
	for _, m := range r.members {
		if msg.Seq <= m.floor {
			continue
		}
		if frame.Data == nil {
			frame = Frame{Data: r.hub.codec.Message(msg), Kind: "message", Arrived: msg.TS, Ctx: ctx}
		}
		r.offer(m, frame)
	}
}

func (r *room) armTimer() {
	if r.gapTimer != nil || r.backfilling {
		return
	}
	// The generation tells a timer that fires late, after it was stopped or
	// replaced, that it is no longer wanted.
	r.timerGen++
	gen := r.timerGen
	r.gapTimer = time.AfterFunc(r.hub.opts.GapWait, func() { r.startBackfill(gen) })
}

func (r *room) stopTimer() {
	if r.gapTimer != nil {
		r.gapTimer.Stop()
		r.gapTimer = nil
	}
}

func (r *room) startBackfill(gen uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gapTimer == nil || r.timerGen != gen {
		return // stopped, or replaced by a newer timer
	}
	r.gapTimer = nil
	if r.backfilling || r.highest <= r.last || len(r.members) == 0 || r.hub.ctx.Err() != nil {
		return
	}
	r.backfilling = true
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
		cursor, highest, members := r.last, r.highest, len(r.members)
		if highest <= cursor || members == 0 || ctx.Err() != nil {
			r.backfilling = false
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
		switch {
		case len(msgs) == 0:
			// Nothing past cursor is stored, so whatever announced seqs up
			// to highest was not a stored message (a bad broker event):
			// forget those claims. Moving last up to them instead would
			// make every real message below them look delivered. Claims
			// made during the read get a read of their own.
			for seq := range r.pending {
				if seq <= highest {
					delete(r.pending, seq)
				}
			}
			if r.highest == highest {
				r.highest = r.last
				for seq := range r.pending {
					r.highest = max(r.highest, seq)
				}
			}
		case msgs[0].Seq > r.last+1:
			// The store no longer keeps the start of the gap (bounded
			// in-memory history): skip what cannot be had.
			r.last = msgs[0].Seq - 1
		}
		r.hub.stats.backfilled.Add(int64(len(msgs)))
		for _, msg := range msgs {
			r.accept(context.Background(), msg) // no trace: a store read
		}
		r.mu.Unlock()
	}
}
