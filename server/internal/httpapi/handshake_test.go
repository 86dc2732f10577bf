package httpapi

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/parleychat/parley/internal/testenv"
	"github.com/parleychat/parley/server/internal/memstore"
)

// A client that asks for an upgrade and then reads nothing cannot hold the
// upgrade's handler: writing the 101 gives up at the handshake timeout.
func TestUpgradeThatIsNotReadGivesUpAtTheHandshakeTimeout(t *testing.T) {
	t.Parallel()
	api, hub := newTestAPI(t, memstore.New(memstore.Options{}), Config{HandshakeTimeout: 300 * time.Millisecond})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stalled := &stallingListener{Listener: ln, released: make(chan struct{})}
	srv := &http.Server{Handler: api.server.Handler()}
	var serving sync.WaitGroup
	serving.Go(func() { srv.Serve(stalled) })
	t.Cleanup(func() {
		close(stalled.released)
		api.drainAtEnd()
		srv.Close()
		serving.Wait()
		hub.Close()
	})
	api.base = "http://" + ln.Addr().String()
	token := api.mustRegister("reads-nothing")

	start := time.Now()
	go func() {
		ws, _, err := api.dial(token)
		if err == nil {
			ws.Close()
		}
	}()
	testenv.EventuallyWithin(t, 3*time.Second, "the unread upgrade given up", func() bool {
		return api.metric("parley_ws_upgrades_total", "result", "failed") == 1
	})
	if took := time.Since(start); took < 250*time.Millisecond {
		t.Errorf("the upgrade gave up after %v, before the handshake timeout (300ms)", took)
	}
}

// stallingListener accepts connections whose peer reads nothing once the
// 101 is due: writing it blocks until the write deadline, as it does on a
// socket whose peer has let the buffers fill, and for good without one
// (until the test ends). Everything before the 101 goes through.
type stallingListener struct {
	net.Listener
	released chan struct{}
}

func (l *stallingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &stallingConn{Conn: c, released: l.released}, nil
}

type stallingConn struct {
	net.Conn
	released chan struct{}
	mu       sync.Mutex
	deadline time.Time
}

func (c *stallingConn) SetDeadline(t time.Time) error {
	c.setWriteDeadline(t)
	return c.Conn.SetDeadline(t)
}

func (c *stallingConn) SetWriteDeadline(t time.Time) error {
	c.setWriteDeadline(t)
	return c.Conn.SetWriteDeadline(t)
}

func (c *stallingConn) setWriteDeadline(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
}

func (c *stallingConn) Write(p []byte) (int, error) {
	if !bytes.HasPrefix(p, []byte("HTTP/1.1 101 ")) {
		return c.Conn.Write(p)
	}
	c.mu.Lock()
	deadline := c.deadline
	c.mu.Unlock()
	var expired <-chan time.Time
	if !deadline.IsZero() {
		expired = time.After(time.Until(deadline))
	}
	select {
	case <-expired:
		return 0, os.ErrDeadlineExceeded
	case <-c.released:
		return 0, net.ErrClosed
	}
}
