package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleychat/parley/loadtest/wire"
)

// The load generator's own client sets up and chats through the baseline:
// two users join a room, one sends, both get the message and the sender
// its ack.
func TestTwoClientsJoinSendAndReceive(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(newHub().routes())
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	api, err := wire.NewClient(srv.URL, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	alice, err := api.SignUp(ctx, "alice", "password1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.SignUp(ctx, "alice", "password1"); !wire.IsConflict(err) {
		t.Fatalf("second sign-up: got %v, want a 409", err)
	}
	bob, err := api.LogIn(ctx, "alice", "password1")
	if err != nil || bob.Token != alice.Token {
		t.Fatalf("log-in: got %+v, %v, want alice's token", bob, err)
	}
	if bob, err = api.SignUp(ctx, "bob", "password1"); err != nil {
		t.Fatal(err)
	}
	rm, err := api.CreateRoom(ctx, alice.Token, "lobby")
	if err != nil {
		t.Fatal(err)
	}

	var conns []*wire.Conn
	for _, s := range []wire.Session{alice, bob} {
		c, err := wire.Dial(ctx, websocket.DefaultDialer, api.WebSocketURL(), s.Token)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		mustWrite(t, c, wire.JoinFrame(rm.ID, nil))
		if f := mustRead(t, c); f.Type != wire.TypeJoined || f.Room != rm.ID || f.LastSeq != 0 {
			t.Fatalf("got %+v, want joined %s at last_seq 0", f, rm.ID)
		}
		conns = append(conns, c)
	}
	for i := range 2 {
		mustWrite(t, conns[0], wire.SendFrame(rm.ID, "c"+string(rune('1'+i)), "hello", ""))
	}

	var acks []wire.In
	for range 4 { // alice: two messages and two acks, in any interleaving
		if f := mustRead(t, conns[0]); f.Type == wire.TypeAck {
			acks = append(acks, f)
		}
	}
	if len(acks) != 2 || acks[0].ClientID != "c1" || acks[0].Seq != 1 || acks[1].Seq != 2 {
		t.Fatalf("alice's acks: got %+v, want c1 at seq 1 and c2 at seq 2", acks)
	}
	for seq := int64(1); seq <= 2; seq++ {
		if f := mustRead(t, conns[1]); f.Type != wire.TypeMessage || f.Seq != seq || f.Room != rm.ID {
			t.Fatalf("bob: got %+v, want message seq %d", f, seq)
		}
	}
}

func TestUpgradeWithoutTokenIsRefused(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(newHub().routes())
	t.Cleanup(srv.Close)
	_, resp, err := websocket.DefaultDialer.Dial("ws"+srv.URL[len("http"):]+"/ws?token=nobody", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("got %v (%v), want a 401", resp, err)
	}
}

func mustWrite(t *testing.T, c *wire.Conn, frame []byte) {
	t.Helper()
	if err := c.Write(frame); err != nil {
		t.Fatal(err)
	}
}

func mustRead(t *testing.T, c *wire.Conn) wire.In {
	t.Helper()
	f, err := c.Read()
	if err != nil {
		t.Fatal(err)
	}
	return f
}
