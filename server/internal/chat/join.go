package chat

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrReplayFailed marks a Join that failed after its joined frame was sent,
// while replaying history. The subscriber is no longer a member, but its
// client was told it is: the transport must disconnect it so that it
// resumes with since.
var ErrReplayFailed = errors.New("replay failed")

// maxListedMembers bounds the members listed in a joined frame: the list is
// built under the room's lock, and a reconnect storm in a huge room must not
// cost the square of its size.
const maxListedMembers = 500

// Join adds sub to the room as user. The subscriber first gets the joined
// frame, then, when since is set, every stored message with seq > since,
// then live messages, with no gap and no duplicate between them.
func (h *Hub) Join(ctx context.Context, roomID string, sub Subscriber, user User, since *int64) error {
	r, err := h.enter(ctx, roomID)
	if err != nil {
		return err
	}
	m, joinedAt, err := r.register(sub, user, since)
	if err != nil {
		h.release(r)
		return err
	}
	if !m.replaying {
		return nil
	}
	if err := h.replay(ctx, roomID, sub, *since, joinedAt); err != nil {
		h.Leave(roomID, sub)
		return fmt.Errorf("%w: %w", ErrReplayFailed, err)
	}
	if err := r.flushHeld(ctx, m); err != nil {
		h.Leave(roomID, sub)
		return fmt.Errorf("%w: %w", ErrReplayFailed, err)
	}
	return nil
}

// enter returns the room, loaded, with a reference counted for the joiner.
// The joiner that creates the room loads it; later ones wait for that.
func (h *Hub) enter(ctx context.Context, roomID string) (*room, error) {
	r, created := h.acquire(roomID)
	if created {
		// A failed load has forgotten the room already, so the joiner's
		// reference goes with it rather than being released.
		if err := r.load(); err != nil {
			return nil, err
		}
		return r, nil
	}
	select {
	case <-r.ready:
	case <-ctx.Done():
		h.release(r)
		return nil, ctx.Err()
	}
	if r.loadErr != nil {
		h.release(r)
		return nil, r.loadErr
	}
	return r, nil
}

// loadTimeout bounds reading a room's state when its first member joins.
const loadTimeout = 10 * time.Second

// load reads the room's newest seq from the store. Messages delivered while
// it runs wait in pending and are sorted out once last is known. It runs on
// the hub's context, not the joiner's: other joiners wait for its result,
// and one client giving up must not fail them all.
func (r *room) load() error {
	ctx, cancel := context.WithTimeout(r.hub.ctx, loadTimeout)
	defer cancel()
	info, err := r.hub.store.Room(ctx, r.id)
	if err != nil {
		// Forgotten before ready closes, so that later joiners create a
		// fresh room instead of finding this failed one.
		r.hub.forget(r)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	defer close(r.ready)
	if err != nil {
		r.loadErr = err
		return err
	}
	r.startSequence(info.LastSeq)
	return nil
}

// register adds the member, announces it, and queues its joined frame, all
// under the room's lock so that no live frame can come between.
func (r *room) register(sub Subscriber, user User, since *int64) (*member, int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.members[sub]; ok {
		return nil, 0, Errorf(ErrConflict, "already joined this room")
	}
	m := &member{sub: sub, user: user}
	if since != nil {
		m.floor = *since
	}
	r.addMember(m)
	r.arrive(sub, user)
	last := r.seq.last
	r.offer(m, Frame{Data: r.hub.codec.Joined(r.id, last, r.users(maxListedMembers)), Kind: "joined"})
	// From here until the replay ends, live frames for m are held back.
	m.replaying = since != nil && *since < last
	// A gap left open while the room had no members to backfill for is
	// worth closing now that it has one.
	r.chaseGap()
	return m, last, nil
}

// replay pushes the stored messages (from, to] to sub.
func (h *Hub) replay(ctx context.Context, roomID string, sub Subscriber, from, to int64) error {
	for cursor := from; cursor < to; {
		msgs, _, err := h.store.History(ctx, roomID, Page{Cursor: cursor, Limit: int(min(int64(h.opts.ReplayPage), to-cursor))})
		if err != nil {
			return err
		}
		if len(msgs) == 0 {
			return nil // the store keeps no more (bounded in-memory history)
		}
		for _, msg := range msgs {
			if msg.Seq > to {
				return nil
			}
			if err := sub.Push(ctx, Frame{Data: h.codec.Message(msg), Kind: "message"}); err != nil {
				return err
			}
			cursor = msg.Seq
		}
	}
	return nil
}

// flushHeld hands m the live frames held during its replay. It waits for
// room in m's queue, as the replay did, outside the lock; frames that arrive
// meanwhile are held in turn, until a round finds none and m goes live.
func (r *room) flushHeld(ctx context.Context, m *member) error {
	for {
		r.mu.Lock()
		held := m.held
		m.held = nil
		if len(held) == 0 || m.dropped {
			m.replaying = false
			r.mu.Unlock()
			return nil
		}
		r.mu.Unlock()
		for _, f := range held {
			if err := m.sub.Push(ctx, f); err != nil {
				return err
			}
		}
	}
}

// Leave removes sub from the room and reports whether it was a member.
func (h *Hub) Leave(roomID string, sub Subscriber) bool {
	r := h.lookup(roomID)
	if r == nil {
		return false
	}
	r.mu.Lock()
	m, ok := r.members[sub]
	if ok {
		r.removeMember(m)
		r.depart(m.user)
	}
	r.mu.Unlock()
	if ok {
		h.release(r)
	}
	return ok
}
