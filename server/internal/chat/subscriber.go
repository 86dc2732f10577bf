package chat

import (
	"context"
	"time"
)

// Frame is an encoded frame on its way to a subscriber.
type Frame struct {
	Data []byte
	// Kind names the frame for metrics: message, joined, presence, typing.
	Kind string
	// Arrived is when a live message arrived at the server that stored it
	// (its timestamp), so that the transport can time its delivery. It is
	// zero for other frames and for history replayed on request.
	Arrived time.Time
	// Ctx carries the delivery's trace for a live message (nil for other
	// frames): the hub passes it on without looking inside.
	Ctx context.Context
}

// Subscriber is one connection's side of the hub: a bounded queue of encoded
// frames on their way to the client. The hub never waits on a subscriber: it
// offers, and when the queue is full it gives up on the subscriber. The hub
// calls Offer and Slow with a room's lock held: they must return promptly and
// must not call back into the hub.
type Subscriber interface {
	// Offer queues frame without blocking and reports whether it fit.
	Offer(frame Frame) bool
	// Push queues frame, waiting for room in the queue until ctx ends. The
	// hub uses it only to replay history that the subscriber asked for, on
	// the goroutine that called Join; a subscriber may keep part of its
	// queue free for live frames, so that the replay does not leave it full
	// when the member goes live.
	Push(ctx context.Context, frame Frame) error
	// Slow tells the subscriber that it fell behind and was dropped from a
	// room. It must disconnect (close 4008) and accept nothing more, so that
	// its client sees a disconnect rather than a gap.
	Slow()
}

// Codec encodes frames for subscribers. The hub calls Message once per
// message and room and hands the same bytes to every member.
type Codec interface {
	Message(m Message) []byte
	Joined(room string, lastSeq int64, members []User) []byte
	Presence(room string, u User, online bool) []byte
	Typing(room string, u User) []byte
}

// member is a subscriber's membership of a room, which offer feeds.
type member struct {
	sub  Subscriber
	user User
	// floor is the since the member joined with: it has every seq up to it,
	// so live messages at or below it are not sent again.
	floor int64
	// While replaying, live frames are held here so they follow the replayed
	// history instead of overtaking it.
	replaying bool
	held      []Frame
	dropped   bool
	at        int // its index in the room's list
}

// addMember and removeMember keep the room's members in both its map, to
// find one, and its list, which the fan-out walks: a walk over a slice of
// ten costs a fraction of one over a map, and a room walks its members
// for every message. r.mu is held.
func (r *room) addMember(m *member) {
	m.at = len(r.list)
	r.list = append(r.list, m)
	r.members[m.sub] = m
}

func (r *room) removeMember(m *member) {
	last := len(r.list) - 1
	r.list[m.at] = r.list[last]
	r.list[m.at].at = m.at
	r.list[last] = nil
	r.list = r.list[:last]
	delete(r.members, m.sub)
}

// offer queues frame for m, or holds it while m replays history. A member
// whose queue or hold is full is dropped and told it is too slow: it must
// never see a later frame after missing an earlier one. r.mu is held.
func (r *room) offer(m *member, frame Frame) bool {
	if m.dropped {
		return false
	}
	if m.replaying {
		if len(m.held) < r.hub.opts.MaxHeld {
			m.held = append(m.held, frame)
			return true
		}
	} else if m.sub.Offer(frame) {
		return true
	}
	m.dropped = true
	m.held = nil
	m.sub.Slow()
	return false
}

// broadcast offers frame to every member but except. r.mu is held.
func (r *room) broadcast(frame Frame, except Subscriber) {
	for _, m := range r.list {
		if m.sub != except {
			r.offer(m, frame)
		}
	}
}
