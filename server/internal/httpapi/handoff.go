package httpapi

import "sync"

// handoff passes each frame the reader reads to the connection's handler
// goroutine, and waits for it to be handled. Handling a frame (JSON, the
// store, the hub, spans) grows a goroutine's stack to 8 KiB or more, and Go
// does not give a stack back while its goroutine waits in a read: handled
// on the reader, an idle connection would keep all of it. So the reader
// only reads, with a small stack, and the handler, which has grown its
// stack once, handles. Like the writer, the handler waits for more once it
// is done, and the keepalive loop retires it after a quiet tick
// (retireIdle): a busy connection keeps it, a quiet one has none. The
// reader waits for each frame's verdict, so frames are still handled one
// at a time and in order.
type handoff struct {
	mu      sync.Mutex
	running bool // a handler goroutine exists, with the channels below
	busy    bool // it has a frame in hand
	idle    int  // keepalive ticks seen while it waited
	work    chan inFrame
	done    chan bool // whether reading goes on
	quit    chan struct{}
	wg      sync.WaitGroup
}

type inFrame struct {
	kind int
	data []byte
}

// handle has the handler handle one frame, starting one if there is none,
// and reports whether reading goes on.
func (h *handoff) handle(c *conn, f inFrame) bool {
	h.mu.Lock()
	if !h.running {
		h.running = true
		h.work, h.done, h.quit = make(chan inFrame), make(chan bool), make(chan struct{})
		h.wg.Add(1)
		go c.handleLoop(h.work, h.done, h.quit)
	}
	h.busy, h.idle = true, 0
	work, done := h.work, h.done
	h.mu.Unlock()
	work <- f
	readOn := <-done
	h.mu.Lock()
	h.busy = false
	h.mu.Unlock()
	return readOn
}

// handleLoop is the connection's handler goroutine.
func (c *conn) handleLoop(work <-chan inFrame, done chan<- bool, quit <-chan struct{}) {
	defer c.handler.wg.Done()
	for {
		select {
		case f := <-work:
			done <- c.handle(f.kind, f.data)
		case <-quit:
			return
		}
	}
}

// retireIdle ends the handler if it has waited through a whole keepalive
// tick; the keepalive loop calls it every tick.
func (h *handoff) retireIdle() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.running && !h.busy {
		if h.idle++; h.idle > 1 {
			h.stop()
		}
	}
}

// stop ends the handler, which has no frame in hand. mu is held.
func (h *handoff) stop() {
	close(h.quit)
	h.running = false
	h.work, h.done, h.quit = nil, nil, nil
}

// end stops the handler for good and waits for it; the reader calls it as
// the connection ends, with no frame in hand.
func (h *handoff) end() {
	h.mu.Lock()
	if h.running {
		h.stop()
	}
	h.mu.Unlock()
	h.wg.Wait()
}
