package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleychat/parley/loadtest/wire"
)

// wsServer answers /ws as far as these tests need the server: an upgrade
// naming its replica in X-Parley-Replica (or a 401 for a bad token), then
// the frames of send, then a normal close.
func wsServer(t *testing.T, replica string, send []string) string {
	t.Helper()
	upgrader := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer good" {
			http.Error(w, `{"error":{"code":"unauthorized","message":"bad token"}}`, http.StatusUnauthorized)
			return
		}
		ws, err := upgrader.Upgrade(w, r, http.Header{ReplicaHeader: {replica}})
		if err != nil {
			return
		}
		defer ws.Close()
		for _, f := range send {
			if err := ws.WriteMessage(websocket.TextMessage, []byte(f)); err != nil {
				return
			}
		}
		ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
		ws.ReadMessage() // until the client closes too
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// A connection knows its replica from the upgrade, reads on while nobody
// takes its frames (keeping the newest), and says why it ended.
func TestConnKnowsItsReplicaAndNeverStallsTheServer(t *testing.T) {
	t.Parallel()
	var send []string
	for i := range 3 * frameBuffer {
		send = append(send, fmt.Sprintf(`{"type":"message","room":"r","client_id":"c%d","seq":%d}`, i, i+1))
	}
	send = append(send, `{"type":"joined","room":"r","replica":"replica-b"}`)
	c, err := Dial(t.Context(), &websocket.Dialer{HandshakeTimeout: 5 * time.Second}, wsServer(t, "replica-a", send), "good")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Replica != "replica-a" {
		t.Errorf("Replica %q, want replica-a from X-Parley-Replica", c.Replica)
	}
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the connection did not end after the server's frames and close: its reader stalled")
	}
	if c.Err() == nil {
		t.Error("Err is nil after the connection ended")
	}
	var got []Frame
	for len(c.Frames()) > 0 {
		got = append(got, <-c.Frames())
	}
	if len(got) == 0 || len(got) > frameBuffer {
		t.Fatalf("kept %d frames, want 1 to %d", len(got), frameBuffer)
	}
	if last := got[len(got)-1]; last.Type != "joined" || last.Replica != "replica-b" {
		t.Errorf("last frame %+v, want the joined frame naming replica-b", last)
	}
	for i := 1; i < len(got)-1; i++ {
		if got[i].Seq != got[i-1].Seq+1 {
			t.Fatalf("frames out of order: seq %d after %d", got[i].Seq, got[i-1].Seq)
		}
	}
}

func TestRefusedDialCarriesItsStatus(t *testing.T) {
	t.Parallel()
	_, err := Dial(t.Context(), &websocket.Dialer{HandshakeTimeout: 5 * time.Second}, wsServer(t, "replica-a", nil), "bad")
	if !wire.HasStatus(err, http.StatusUnauthorized) {
		t.Fatalf("got %v, want an error with status 401", err)
	}
}
