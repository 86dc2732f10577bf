package systemtest

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Every member of a room sees every message once, in seq order, while
// several members send at the same time; every send is acked with its seq.
func TestMembersSeeEveryMessageOnceInOrder(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, env map[string]string) {
		env["PARLEY_USER_RATE"] = "1000"
		env["PARLEY_CONN_RATE"] = "1000"
		srv := startServer(t, env)
		const members, perMember = 4, 40
		owner := srv.mustSignUp("owner")
		room := srv.mustCreateRoom(owner.Token, "busy")

		clients := make([]*wsClient, members)
		for i := range clients {
			clients[i] = srv.dial(srv.mustSignUp(fmt.Sprint("member", i)).Token)
			clients[i].join(room.ID, nil)
		}
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Go(func() {
				for n := range perMember {
					c.send(map[string]any{"type": "send", "room": room.ID, "client_id": fmt.Sprintf("m%d-%d", i, n), "body": "hi"})
				}
			})
		}
		wg.Wait()

		total := members * perMember
		for i, c := range clients {
			var seqs []int64
			acks := map[string]int64{}
			for len(seqs) < total || len(acks) < perMember {
				switch f := c.next(); f.Type {
				case "message":
					seqs = append(seqs, f.Seq)
				case "ack":
					acks[f.ClientID] = f.Seq
				case "presence", "typing":
				default:
					t.Fatalf("member %d: unexpected frame %+v", i, f)
				}
			}
			wantRun(t, fmt.Sprint("member ", i), seqs, 1, int64(total))
			if len(acks) != perMember {
				t.Fatalf("member %d: got %d acks, want %d", i, len(acks), perMember)
			}
		}
		history := srv.mustHistory(owner.Token, room.ID, "after_seq=0&limit=500")
		wantRun(t, "history", seqsOf(history), 1, int64(total))
	})
}

// A repeated client_id is acked with the original id and seq and delivered
// once, over WebSocket and REST alike.
func TestRepeatedClientIDIsAckedAgainButDeliveredOnce(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, env map[string]string) {
		srv := startServer(t, env)
		alice := srv.mustSignUp("alice")
		room := srv.mustCreateRoom(alice.Token, "lobby")
		c := srv.dial(alice.Token)
		c.join(room.ID, nil)

		send := map[string]any{"type": "send", "room": room.ID, "client_id": "once", "body": "hello"}
		c.send(send)
		first := c.expect("message")
		ack1 := c.expect("ack")
		c.send(send)
		ack2 := c.expect("ack")
		if ack1.ID != ack2.ID || ack1.Seq != ack2.Seq || ack1.ID != first.ID {
			t.Fatalf("got acks %+v and %+v for message %+v, want the same id and seq", ack1, ack2, first)
		}

		var out struct{ Message apiMessage }
		code := srv.call("POST", "/api/v1/rooms/"+room.ID+"/messages", alice.Token, map[string]string{"client_id": "once", "body": "hello"}, &out)
		if code != http.StatusOK || out.Message.ID != first.ID {
			t.Fatalf("REST repeat: got %d %+v, want 200 with the original message", code, out.Message)
		}
		code = srv.call("POST", "/api/v1/rooms/"+room.ID+"/messages", alice.Token, map[string]string{"client_id": "rest", "body": "again"}, &out)
		if code != http.StatusCreated || out.Message.Seq != 2 {
			t.Fatalf("REST send: got %d seq %d, want 201 seq 2", code, out.Message.Seq)
		}
		if got := c.expect("message"); got.Seq != 2 {
			t.Fatalf("got message seq %d next, want 2 (the repeat must not be delivered)", got.Seq)
		}
	})
}

// A client that reconnects and joins with since = the last seq it saw gets
// exactly the messages it missed, then live ones.
func TestResumeWithSinceGetsExactlyTheMissedMessages(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, env map[string]string) {
		srv := startServer(t, env)
		alice, bob := srv.mustSignUp("alice"), srv.mustSignUp("bob")
		room := srv.mustCreateRoom(alice.Token, "lobby")
		sender := srv.dial(alice.Token)
		reader := srv.dial(bob.Token)
		reader.join(room.ID, nil)
		sendN(t, sender, room.ID, "before", 5)
		var last int64
		for range 5 {
			last = reader.expect("message").Seq
		}
		reader.conn.Close()

		sendN(t, sender, room.ID, "missed", 7)
		back := srv.dial(bob.Token)
		joined := back.join(room.ID, &last)
		if joined.LastSeq != 12 {
			t.Fatalf("got joined last_seq %d, want 12", joined.LastSeq)
		}
		var got []int64
		for range 7 {
			got = append(got, back.expect("message").Seq)
		}
		sendN(t, sender, room.ID, "after", 1)
		got = append(got, back.expect("message").Seq)
		wantRun(t, "resumed stream", got, 6, 13)
	})
}

// sendN sends n messages and waits for their acks, passing over the
// deliveries of the sender's own messages.
func sendN(t *testing.T, c *wsClient, room, prefix string, n int) []frame {
	t.Helper()
	var acks []frame
	for i := range n {
		c.send(map[string]any{"type": "send", "room": room, "client_id": fmt.Sprintf("%s-%d", prefix, i), "body": "text " + prefix})
		for {
			f := c.next()
			if f.Type == "ack" {
				acks = append(acks, f)
				break
			}
			if f.Type != "message" && f.Type != "presence" && f.Type != "typing" {
				t.Fatalf("got frame %+v, want an ack", f)
			}
		}
	}
	return acks
}

// Acked messages are durable: a new server on the same database has them,
// and a client resuming from seq 0 receives them.
func TestAckedMessagesSurviveARestart(t *testing.T) {
	t.Parallel()
	env := envFor(t, "postgres")
	env["PARLEY_USER_RATE"] = "1000"
	srv := startServer(t, env)
	alice := srv.mustSignUp("alice")
	room := srv.mustCreateRoom(alice.Token, "durable")
	acks := sendN(t, srv.dial(alice.Token), room.ID, "keep", 25)
	if err := srv.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	again := startServer(t, env)
	history := again.mustHistory(alice.Token, room.ID, "after_seq=0")
	wantRun(t, "history after restart", seqsOf(history), 1, 25)
	for i, m := range history {
		if m.ID != acks[i].ID || m.TS != acks[i].TS {
			t.Fatalf("message %d: got id %s ts %s, want the acked %s %s", i, m.ID, m.TS, acks[i].ID, acks[i].TS)
		}
	}
	c := again.dial(alice.Token)
	c.join(room.ID, ptr(int64(0)))
	var got []int64
	for range 25 {
		got = append(got, c.expect("message").Seq)
	}
	wantRun(t, "replay after restart", got, 1, 25)
	if ack := sendN(t, c, room.ID, "next", 1)[0]; ack.Seq != 26 {
		t.Fatalf("got seq %d after restart, want 26", ack.Seq)
	}
}

// Presence follows joins and leaves; typing reaches the others.
func TestPresenceAndTyping(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, env map[string]string) {
		srv := startServer(t, env)
		alice, bob := srv.mustSignUp("alice"), srv.mustSignUp("bob")
		room := srv.mustCreateRoom(alice.Token, "lobby")
		a, b := srv.dial(alice.Token), srv.dial(bob.Token)
		a.join(room.ID, nil)
		joined := b.join(room.ID, nil)
		var names []string
		for _, m := range joined.Members {
			names = append(names, m.Username)
		}
		slices.Sort(names)
		if fmt.Sprint(names) != "[alice bob]" {
			t.Fatalf("got members %v, want [alice bob]", names)
		}
		if f := a.next(); f.Type != "presence" || f.Status != "online" || f.User.Username != "bob" {
			t.Fatalf("got %+v, want bob online", f)
		}
		b.send(map[string]any{"type": "typing", "room": room.ID})
		if f := a.next(); f.Type != "typing" || f.User.Username != "bob" || f.Room != room.ID {
			t.Fatalf("got %+v, want bob typing", f)
		}
		b.send(map[string]any{"type": "leave", "room": room.ID})
		if f := b.next(); f.Type != "left" || f.Room != room.ID {
			t.Fatalf("got %+v, want left", f)
		}
		if f := a.next(); f.Type != "presence" || f.Status != "offline" || f.User.Username != "bob" {
			t.Fatalf("got %+v, want bob offline", f)
		}
		b.conn.Close()
		a.send(map[string]any{"type": "send", "room": room.ID, "client_id": "x", "body": "still here"})
		if f := a.expect("message"); f.Seq != 1 {
			t.Fatalf("got %+v, want message 1", f)
		}
	})
}

// History pages forward and backward, always ascending.
func TestHistoryPaging(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, env map[string]string) {
		srv := startServer(t, env)
		alice := srv.mustSignUp("alice")
		room := srv.mustCreateRoom(alice.Token, "paged")
		sendN(t, srv.dial(alice.Token), room.ID, "p", 12)
		tests := []struct {
			query    string
			from, to int64
			hasMore  bool
		}{
			{"after_seq=0&limit=5", 1, 5, true},
			{"after_seq=5&limit=5", 6, 10, true},
			{"after_seq=10&limit=5", 11, 12, false},
			{"before_seq=13&limit=5", 8, 12, true},
			{"before_seq=3&limit=5", 1, 2, false},
			{"limit=4", 9, 12, true},
			{"", 1, 12, false},
			{"after_seq=0&limit=100000", 1, 12, false},
		}
		for _, tt := range tests {
			var out struct {
				Messages []apiMessage
				HasMore  bool `json:"has_more"`
			}
			if code := srv.call("GET", "/api/v1/rooms/"+room.ID+"/messages?"+tt.query, alice.Token, nil, &out); code != http.StatusOK {
				t.Fatalf("%s: got status %d", tt.query, code)
			}
			wantRun(t, tt.query, seqsOf(out.Messages), tt.from, tt.to)
			if out.HasMore != tt.hasMore {
				t.Fatalf("%s: got has_more %v, want %v", tt.query, out.HasMore, tt.hasMore)
			}
		}
		var rooms struct{ Rooms []apiRoom }
		srv.call("GET", "/api/v1/rooms", alice.Token, nil, &rooms)
		if len(rooms.Rooms) != 1 || rooms.Rooms[0].LastSeq != 12 {
			t.Fatalf("got rooms %+v, want one with last_seq 12", rooms.Rooms)
		}
	})
}

// Every bad request of the contract gets its status and error code, and
// changes nothing.
func TestBadRequestsGetClearErrors(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, env map[string]string) {
		srv := startServer(t, env)
		alice := srv.mustSignUp("alice")
		room := srv.mustCreateRoom(alice.Token, "lobby")
		msgs := "/api/v1/rooms/" + room.ID + "/messages"
		long := strings.Repeat("é", 4001)
		tests := []struct {
			name, method, path, token string
			body                      any
			status                    int
			code                      string
		}{
			{"username too short", "POST", "/api/v1/users", "", map[string]string{"username": "al", "password": "longenough"}, 400, "bad_request"},
			{"username with a space", "POST", "/api/v1/users", "", map[string]string{"username": "al ice", "password": "longenough"}, 400, "bad_request"},
			{"password too short", "POST", "/api/v1/users", "", map[string]string{"username": "carol", "password": "short"}, 400, "bad_request"},
			{"password too long", "POST", "/api/v1/users", "", map[string]string{"username": "carol", "password": strings.Repeat("p", 129)}, 400, "bad_request"},
			{"username taken in another case", "POST", "/api/v1/users", "", map[string]string{"username": "ALICE", "password": "longenough"}, 409, "conflict"},
			{"body not JSON", "POST", "/api/v1/users", "", "{nope", 400, "bad_request"},
			{"field of the wrong type", "POST", "/api/v1/users", "", `{"username": 7}`, 400, "bad_request"},
			{"wrong password", "POST", "/api/v1/sessions", "", map[string]string{"username": "alice", "password": "not the one"}, 401, "unauthorized"},
			{"unknown user", "POST", "/api/v1/sessions", "", map[string]string{"username": "nobody", "password": "whatever1"}, 401, "unauthorized"},
			{"no token", "GET", "/api/v1/rooms", "", nil, 401, "unauthorized"},
			{"forged token", "GET", "/api/v1/rooms", "eyJhbGciOiJub25lIn0.e30.", nil, 401, "unauthorized"},
			{"empty room name", "POST", "/api/v1/rooms", alice.Token, map[string]string{"name": " "}, 400, "bad_request"},
			{"room name too long", "POST", "/api/v1/rooms", alice.Token, map[string]string{"name": strings.Repeat("r", 65)}, 400, "bad_request"},
			{"room name taken", "POST", "/api/v1/rooms", alice.Token, map[string]string{"name": "LOBBY"}, 409, "conflict"},
			{"history of an unknown room", "GET", "/api/v1/rooms/nope/messages", alice.Token, nil, 404, "not_found"},
			{"both paging directions", "GET", msgs + "?after_seq=1&before_seq=5", alice.Token, nil, 400, "bad_request"},
			{"negative cursor", "GET", msgs + "?after_seq=-1", alice.Token, nil, 400, "bad_request"},
			{"limit not a number", "GET", msgs + "?limit=ten", alice.Token, nil, 400, "bad_request"},
			{"limit zero", "GET", msgs + "?limit=0", alice.Token, nil, 400, "bad_request"},
			{"send to an unknown room", "POST", "/api/v1/rooms/nope/messages", alice.Token, map[string]string{"client_id": "a", "body": "x"}, 404, "not_found"},
			{"send without client_id", "POST", msgs, alice.Token, map[string]string{"body": "x"}, 400, "bad_request"},
			{"client_id too long", "POST", msgs, alice.Token, map[string]string{"client_id": strings.Repeat("c", 65), "body": "x"}, 400, "bad_request"},
			{"empty body", "POST", msgs, alice.Token, map[string]string{"client_id": "a", "body": ""}, 400, "bad_request"},
			{"body over 4000 characters", "POST", msgs, alice.Token, map[string]string{"client_id": "a", "body": long}, 413, "too_large"},
			{"request body over 64 KiB", "POST", msgs, alice.Token, map[string]string{"client_id": "a", "body": strings.Repeat("x", 70000)}, 413, "too_large"},
			{"unknown endpoint", "GET", "/api/v1/nothing", alice.Token, nil, 404, "not_found"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var out apiError
				status := srv.call(tt.method, tt.path, tt.token, tt.body, &out)
				if status != tt.status || out.Error.Code != tt.code || out.Error.Message == "" {
					t.Fatalf("got %d %+v, want %d with code %q and a message", status, out.Error, tt.status, tt.code)
				}
			})
		}
		if got := srv.mustHistory(alice.Token, room.ID, ""); len(got) != 0 {
			t.Fatalf("got %d messages after only bad sends, want 0", len(got))
		}
	})
}

// Bad frames get error frames echoing their ref, and the connection stays
// open; a frame over the read limit closes it with 1009.
func TestBadFramesGetErrorFrames(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, env map[string]string) {
		srv := startServer(t, env)
		alice := srv.mustSignUp("alice")
		room := srv.mustCreateRoom(alice.Token, "lobby")
		c := srv.dial(alice.Token)
		tests := []struct {
			name     string
			raw      string
			code     string
			ref      string
			isBinary bool
		}{
			{"not JSON", `{"type":`, "bad_request", "", false},
			{"not an object", `[1,2]`, "bad_request", "", false},
			{"no type", `{"room":"x"}`, "bad_request", "", false},
			{"unknown type", `{"type":"dance","room":"x"}`, "bad_request", "dance", false},
			{"join without room", `{"type":"join"}`, "bad_request", "join", false},
			{"join unknown room", `{"type":"join","room":"nope"}`, "not_found", "join", false},
			{"join with negative since", `{"type":"join","room":"` + room.ID + `","since":-1}`, "bad_request", "join", false},
			{"since of the wrong type", `{"type":"join","room":"` + room.ID + `","since":"5"}`, "bad_request", "join", false},
			{"leave a room not joined", `{"type":"leave","room":"` + room.ID + `"}`, "bad_request", "leave", false},
			{"typing in a room not joined", `{"type":"typing","room":"` + room.ID + `"}`, "bad_request", "typing", false},
			{"send without client_id", `{"type":"send","room":"` + room.ID + `","body":"x"}`, "bad_request", "send", false},
			{"send with empty body", `{"type":"send","room":"` + room.ID + `","client_id":"c1","body":""}`, "bad_request", "c1", false},
			{"send over 4000 characters", `{"type":"send","room":"` + room.ID + `","client_id":"c2","body":"` + strings.Repeat("x", 4001) + `"}`, "too_large", "c2", false},
			{"send to an unknown room", `{"type":"send","room":"nope","client_id":"c3","body":"x"}`, "not_found", "c3", false},
			{"invalid UTF-8", "{\"type\":\"send\",\"body\":\"\xff\xfe\"}", "bad_request", "", false},
			{"binary frame", `{"type":"join"}`, "bad_request", "", true},
		}
		for _, tt := range tests {
			kind := websocket.TextMessage
			if tt.isBinary {
				kind = websocket.BinaryMessage
			}
			if err := c.conn.WriteMessage(kind, []byte(tt.raw)); err != nil {
				t.Fatal(err)
			}
			f := c.next()
			if f.Type != "error" || f.Code != tt.code || f.Ref != tt.ref || f.Message == "" {
				t.Errorf("%s: got %+v, want error %q with ref %q", tt.name, f, tt.code, tt.ref)
			}
		}
		// Still open and working.
		c.join(room.ID, nil)
		c.send(map[string]any{"type": "join", "room": room.ID})
		if f := c.next(); f.Type != "error" || f.Code != "conflict" {
			t.Fatalf("joining twice: got %+v, want a conflict error", f)
		}
		sendN(t, c, room.ID, "ok", 1)

		// The write may fail part way: the server refuses the frame from its
		// header and closes while the rest is still being sent.
		_ = c.conn.WriteMessage(websocket.TextMessage, []byte(strings.Repeat(" ", 70<<10)))
		if code := c.waitClosed(5 * time.Second); code != websocket.CloseMessageTooBig {
			t.Fatalf("got close code %d after an oversized frame, want 1009", code)
		}
		if got := srv.mustHistory(alice.Token, room.ID, ""); len(got) != 1 {
			t.Fatalf("got %d messages stored, want only the 1 good one", len(got))
		}
	})
}

func ptr[T any](v T) *T { return &v }
