package httpapi

import (
	"sync"

	"github.com/parleychat/parley/server/internal/chat"
)

// sendQueue holds a connection's frames on their way to the client, and
// says whether a writer is at work on them. It costs nothing while empty:
// an idle connection holds no buffer (a channel of SendQueue frames cost
// every connection 20 KiB whether it was used or not) and no writer (the
// writers are the server's, shared), so that thousands of quiet sockets
// cost little more than their reader. The buffer comes from rings, the
// server's pool of small ones, grows by doubling as frames queue up, to at
// most limit, and goes once drained: a small one back to the pool, so that
// a message now and then allocates nothing, a grown one to the collector.
type sendQueue struct {
	mu      sync.Mutex
	ring    []chat.Frame
	head, n int
	limit   int
	rings   *sync.Pool // of *[smallRing]chat.Frame, all slots zero

	// writing is true while a writer of the pool works for the
	// connection: the one that set it submits it, and the writer clears it
	// when it finds nothing more to write.
	writing bool
	// pingDue asks the writer for a ping (see keepalive.go); pong, when
	// not nil, is the payload of the client's last ping, to be answered.
	pingDue bool
	pong    []byte
	// shut is set once the connection has written its last frame: nothing
	// more is queued, and no writer starts again.
	shut bool
}

// smallRing is the size of the pooled buffers: most connections never
// have more frames waiting.
const smallRing = 4

// push queues f unless the queue is full or shut, and reports whether it
// did and whether the caller must start a writer. mu is held.
func (q *sendQueue) push(f chat.Frame) (ok, start bool) {
	if q.shut || q.n >= q.limit {
		return false, false
	}
	if q.n == len(q.ring) {
		q.grow()
	}
	q.ring[(q.head+q.n)%len(q.ring)] = f
	q.n++
	return true, q.callWriter()
}

// callWriter reports whether the caller must submit the connection to the
// writers: true when no writer works for it, and then one does. mu is
// held.
func (q *sendQueue) callWriter() bool {
	if q.writing || q.shut {
		return false
	}
	q.writing = true
	return true
}

func (q *sendQueue) grow() {
	if q.ring == nil && q.limit >= smallRing {
		q.ring = q.rings.Get().(*[smallRing]chat.Frame)[:]
		return
	}
	ring := make([]chat.Frame, min(max(2*len(q.ring), smallRing), q.limit))
	for i := range q.n {
		ring[i] = q.ring[(q.head+i)%len(q.ring)]
	}
	q.release()
	q.ring, q.head = ring, 0
}

// release lets the buffer go, to the pool if it came from there; the
// frames it held are already cleared. mu is held.
func (q *sendQueue) release() {
	if len(q.ring) == smallRing {
		clear(q.ring)
		q.rings.Put((*[smallRing]chat.Frame)(q.ring))
	}
	q.ring = nil
}

// pop takes the oldest frame. mu is held.
func (q *sendQueue) pop() (chat.Frame, bool) {
	if q.n == 0 {
		return chat.Frame{}, false
	}
	f := q.ring[q.head]
	q.ring[q.head] = chat.Frame{} // let its bytes and context go
	q.head = (q.head + 1) % len(q.ring)
	q.n--
	if q.n == 0 {
		q.head = 0
		q.release()
	}
	return f, true
}

// popInto moves up to max of the oldest frames to dst. mu is held.
func (q *sendQueue) popInto(dst []chat.Frame, max int) []chat.Frame {
	for range max {
		f, ok := q.pop()
		if !ok {
			break
		}
		dst = append(dst, f)
	}
	return dst
}

// length is how many frames wait.
func (q *sendQueue) length() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}
