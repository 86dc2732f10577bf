package httpapi

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleychat/parley/server/internal/memstore"
)

// The keepalive loop pings every connection, and the writer answers the
// client's own pings with their payload: both are frames of the server's
// own framing, and liveness rests on them.
func TestTheServerPingsAndAnswersPings(t *testing.T) {
	t.Parallel()
	api := startAPI(t, memstore.New(memstore.Options{}), Config{PingInterval: 50 * time.Millisecond})
	ws, _, err := api.dial(api.mustRegister("pinged"))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer ws.Close()
	pings, pongs := make(chan struct{}, 16), make(chan string, 1)
	ws.SetPingHandler(func(data string) error {
		select {
		case pings <- struct{}{}:
		default:
		}
		return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(waitFor))
	})
	ws.SetPongHandler(func(data string) error { pongs <- data; return nil })
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	if err := ws.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(waitFor)); err != nil {
		t.Fatalf("ping: %v", err)
	}
	select {
	case got := <-pongs:
		if got != "are you there" {
			t.Errorf("got pong %q, want the ping's payload", got)
		}
	case <-time.After(waitFor):
		t.Fatal("no pong to the client's ping")
	}
	for i := range 3 { // answered, so the connection stays open through several
		select {
		case <-pings:
		case <-time.After(waitFor):
			t.Fatalf("got %d pings from the server, want 3", i)
		}
	}
}

// A client that answers no ping is dropped once its read deadline, two ping
// intervals, has passed.
func TestAClientThatAnswersNoPingIsDropped(t *testing.T) {
	t.Parallel()
	api := startAPI(t, memstore.New(memstore.Options{}), Config{PingInterval: 50 * time.Millisecond})
	ws, _, err := api.dial(api.mustRegister("silent"))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer ws.Close()
	ws.SetPingHandler(func(string) error { return nil }) // no pong
	ws.SetReadDeadline(time.Now().Add(waitFor))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var netErr net.Error
		if errors.As(err, &netErr) && netErr.Timeout() {
			t.Fatalf("still open after %v without a pong", waitFor)
		}
		return // the server ended it
	}
}
