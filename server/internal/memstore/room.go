package memstore

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleychat/parley/server/internal/chat"
)

// room holds one room's newest messages in a ring buffer, so appending to a
// full room overwrites the oldest message instead of moving memory.
type room struct {
	id        string
	name      string
	createdAt time.Time
	limit     int

	// lastSeq is written under mu but read without it, so listing rooms
	// never waits behind a busy room's appends.
	lastSeq atomic.Int64

	mu sync.RWMutex
	// kept holds the messages lastSeq-len(kept)+1 .. lastSeq. It grows up to
	// limit; from then on it is a ring whose oldest message is at head.
	kept []chat.Message
	head int
	// seqOf indexes the kept messages by their idempotency key, and only
	// those: an entry goes when its message is evicted, so the index is as
	// bounded as the history.
	seqOf map[sendKey]int64
}

// sendKey identifies a send within a room for idempotency.
type sendKey struct {
	user     string
	clientID string
}

func newRoom(r chat.Room, limit int) *room {
	return &room{
		id:        r.ID,
		name:      r.Name,
		createdAt: r.CreatedAt,
		limit:     limit,
		seqOf:     make(map[sendKey]int64),
	}
}

func (r *room) info() chat.Room {
	return chat.Room{ID: r.id, Name: r.name, CreatedAt: r.createdAt, LastSeq: r.lastSeq.Load()}
}

func (r *room) append(d chat.Draft) (chat.Message, bool) {
	key := sendKey{user: d.User.ID, clientID: d.ClientID}
	r.mu.Lock()
	defer r.mu.Unlock()
	if seq, ok := r.seqOf[key]; ok {
		return r.at(seq), false
	}

	msg := chat.Message{
		ID:       d.ID,
		Room:     r.id,
		Seq:      r.lastSeq.Load() + 1,
		ClientID: d.ClientID,
		User:     d.User,
		Body:     d.Body,
		TS:       d.TS,
	}
	if len(r.kept) < r.limit {
		r.grow()
		r.kept = append(r.kept, msg)
	} else {
		old := r.kept[r.head]
		oldKey := sendKey{user: old.User.ID, clientID: old.ClientID}
		if r.seqOf[oldKey] == old.Seq {
			delete(r.seqOf, oldKey)
		}
		r.kept[r.head] = msg
		r.head = (r.head + 1) % r.limit
	}
	r.seqOf[key] = msg.Seq
	r.lastSeq.Store(msg.Seq)
	return msg, true
}

// grow makes room for one more message without letting append's growth
// policy allocate past limit, which for a large limit wastes a quarter of a
// full room's memory. r.mu is held.
func (r *room) grow() {
	if len(r.kept) < cap(r.kept) {
		return
	}
	grown := make([]chat.Message, len(r.kept), min(max(2*cap(r.kept), 16), r.limit))
	copy(grown, r.kept)
	r.kept = grown
}

// at returns the kept message with the given seq. r.mu is held.
func (r *room) at(seq int64) chat.Message {
	first := r.lastSeq.Load() - int64(len(r.kept)) + 1
	return r.kept[(r.head+int(seq-first))%len(r.kept)]
}

// page implements chat.Store.History over the kept messages.
func (r *room) page(p chat.Page) ([]chat.Message, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	last := r.lastSeq.Load()
	first := last - int64(len(r.kept)) + 1 // last+1 while nothing is kept

	// The early returns keep Cursor±1 from overflowing at the ends of int64.
	if p.Backward {
		if p.Cursor <= first {
			return []chat.Message{}, false
		}
		hi := min(p.Cursor-1, last)
		avail := hi - first + 1
		n := pageSize(p.Limit, avail)
		return r.slice(hi-n+1, n), n < avail
	}
	if p.Cursor >= last {
		return []chat.Message{}, false
	}
	lo := max(p.Cursor+1, first)
	avail := last - lo + 1
	n := pageSize(p.Limit, avail)
	return r.slice(lo, n), n < avail
}

// pageSize is how many of avail messages a page with the given limit holds.
func pageSize(limit int, avail int64) int64 {
	return min(max(int64(limit), 0), avail)
}

// slice copies n kept messages starting at seq lo. r.mu is held.
func (r *room) slice(lo, n int64) []chat.Message {
	out := make([]chat.Message, n)
	for i := range out {
		out[i] = r.at(lo + int64(i))
	}
	return out
}
