package systemtest

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleychat/parley/internal/testenv"
)

// Upgrades need valid credentials and an allowed origin; a ticket works once.
func TestUpgradeRefusals(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, env map[string]string) {
		env["PARLEY_ALLOWED_ORIGINS"] = "https://chat.example.com"
		srv := startServer(t, env)
		alice := srv.mustSignUp("alice")
		bearer := http.Header{"Authorization": {"Bearer " + alice.Token}}
		withOrigin := func(origin string) http.Header {
			h := bearer.Clone()
			h.Set("Origin", origin)
			return h
		}
		ticket := srv.mustTicket(alice.Token)
		host := strings.TrimPrefix(srv.base, "http://")
		tests := []struct {
			name   string
			header http.Header
			query  string
			want   int
		}{
			{"no credentials", nil, "", 401},
			{"garbage token", http.Header{"Authorization": {"Bearer nope"}}, "", 401},
			{"unknown ticket", nil, "?ticket=nope", 401},
			{"bearer token", bearer, "", 101},
			{"ticket", nil, "?ticket=" + ticket, 101},
			{"the same ticket again", nil, "?ticket=" + ticket, 401},
			{"foreign origin", withOrigin("https://evil.example"), "", 403},
			{"configured origin", withOrigin("https://chat.example.com"), "", 101},
			{"the server's own origin", withOrigin("http://" + host), "", 101},
			{"unparsable origin", withOrigin("::nope"), "", 403},
		}
		for _, tt := range tests {
			if got := srv.dialWith(tt.header, tt.query); got != tt.want {
				t.Errorf("%s: got status %d, want %d", tt.name, got, tt.want)
			}
		}
	})
}

// A connection whose token expires is closed with 1008.
func TestExpiredTokenClosesTheSocket(t *testing.T) {
	t.Parallel()
	env := envFor(t, "memory")
	env["PARLEY_TOKEN_TTL"] = "2s"
	srv := startServer(t, env)
	c := srv.dial(srv.mustSignUp("alice").Token)
	if code := c.waitClosed(10 * time.Second); code != websocket.ClosePolicyViolation {
		t.Fatalf("got close code %d, want 1008", code)
	}
}

// A connection that keeps sending over its limit gets rate_limited errors
// and then close 4029.
func TestFloodingIsRefusedThenClosed(t *testing.T) {
	t.Parallel()
	env := envFor(t, "memory")
	env["PARLEY_CONN_RATE"] = "5"
	srv := startServer(t, env)
	alice := srv.mustSignUp("alice")
	room := srv.mustCreateRoom(alice.Token, "lobby")
	c := srv.dial(alice.Token)
	c.join(room.ID, nil)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				if c.write(map[string]any{"type": "typing", "room": room.ID}) != nil {
					return
				}
			}
		}
	})
	defer func() { close(stop); wg.Wait() }()
	var limited int
	for {
		select {
		case f := <-c.frames:
			if f.Type == "error" && f.Code == "rate_limited" && f.Ref == "typing" {
				limited++
			}
			continue
		case <-c.closed:
		case <-time.After(15 * time.Second):
			t.Fatal("flooding connection still open after 15s")
		}
		break
	}
	if limited == 0 || c.code() != 4029 {
		t.Fatalf("got %d rate_limited errors and close %d, want some and 4029", limited, c.code())
	}
}

// A member that stops reading is closed with 4008 and what it did receive
// has no gap; the others are not held up.
func TestSlowConsumerIsDisconnectedNotSkipped(t *testing.T) {
	forEachStore(t, func(t *testing.T, env map[string]string) {
		env["PARLEY_USER_RATE"] = "100000"
		env["PARLEY_CONN_RATE"] = "100000"
		srv := startServer(t, env)
		alice, bob := srv.mustSignUp("alice"), srv.mustSignUp("bob")
		room := srv.mustCreateRoom(alice.Token, "firehose")

		// bob's socket is read by nobody until the end, so the server's queue
		// for it fills up once the socket buffers are full. Its receive
		// buffer is fixed before connecting, so the kernel does not grow it
		// to tens of megabytes.
		netDialer := net.Dialer{Control: func(_, _ string, raw syscall.RawConn) error {
			var err error
			raw.Control(func(fd uintptr) {
				err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 128<<10)
			})
			return err
		}}
		dialer := websocket.Dialer{NetDial: netDialer.Dial}
		stalled, _, err := dialer.Dial(srv.wsURL(), http.Header{"Authorization": {"Bearer " + bob.Token}})
		if err != nil {
			t.Fatal(err)
		}
		defer stalled.Close()
		if err := stalled.WriteJSON(map[string]any{"type": "join", "room": room.ID}); err != nil {
			t.Fatal(err)
		}
		// Eight senders write without waiting for acks, so that the flood is
		// short even on PostgreSQL (group commit takes their sends together).
		// They have not joined: the acks they count show that the server
		// went on serving while bob stalled.
		body := strings.Repeat("x", 4000)
		const senders, n = 8, 2000 // 8 MB: far more than the queue and the socket buffers hold
		var wg sync.WaitGroup
		defer wg.Wait()
		var acked atomic.Int64
		for s := range senders {
			sender := srv.dial(alice.Token)
			wg.Go(func() {
				for i := s; i < n; {
					select {
					case f := <-sender.frames:
						if f.Type == "ack" {
							acked.Add(1)
							i += senders
						}
					case <-sender.closed:
						return
					case <-time.After(30 * time.Second):
						return
					}
				}
			})
			wg.Go(func() {
				for i := s; i < n; i += senders {
					if sender.write(map[string]any{"type": "send", "room": room.ID, "client_id": fmt.Sprint(i), "body": body}) != nil {
						return
					}
				}
			})
		}
		// Read bob's socket as soon as the server gives up on him: his close
		// frame waits behind what fills his socket buffers, and a write that
		// stays blocked for the whole write timeout drops him without one.
		testenv.Eventually(t, "the slow-consumer close", func() bool {
			return srv.metric("parley_ws_slow_consumer_closes_total") == 1
		})
		stalledClient := newWSClient(t, stalled)
		if code := stalledClient.waitClosed(20 * time.Second); code != 4008 {
			t.Fatalf("got close code %d, want 4008", code)
		}
		var got []int64
		for len(stalledClient.frames) > 0 {
			if f := <-stalledClient.frames; f.Type == "message" {
				got = append(got, f.Seq)
			}
		}
		if len(got) == n {
			t.Fatalf("stalled member got all %d messages: the test did not stall it", n)
		}
		if len(got) > 0 {
			wantRun(t, "the stalled member's prefix", got, 1, int64(len(got)))
		}
		testenv.Eventually(t, "every send acked", func() bool { return acked.Load() == n })
	})
}

// On shutdown the server turns unready, refuses upgrades, closes every
// socket with 1001, and loses nothing it acked.
func TestGracefulDrain(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, env map[string]string) {
		env["PARLEY_DRAIN_JITTER"] = "1500ms"
		env["PARLEY_USER_RATE"] = "100000"
		env["PARLEY_CONN_RATE"] = "100000"
		srv := startServer(t, env)
		alice, bob := srv.mustSignUp("alice"), srv.mustSignUp("bob")
		room := srv.mustCreateRoom(alice.Token, "lobby")
		listeners := make([]*wsClient, 5)
		for i := range listeners {
			listeners[i] = srv.dial(bob.Token)
			listeners[i].join(room.ID, nil)
		}
		sender := srv.dial(alice.Token)

		// The sender keeps sending until its socket closes, counting acks,
		// at most one send a millisecond: the listeners' frames are read
		// only at the end, and must fit their clients' buffers until then.
		var acked atomic.Int64
		var lastAck atomic.Int64
		var wg sync.WaitGroup
		wg.Go(func() {
			pace := time.NewTicker(time.Millisecond)
			defer pace.Stop()
			for i := 0; ; i++ {
				<-pace.C
				if sender.write(map[string]any{"type": "send", "room": room.ID, "client_id": fmt.Sprint(i), "body": "x"}) != nil {
					return
				}
				select {
				case f := <-sender.frames:
					if f.Type == "ack" {
						acked.Add(1)
						lastAck.Store(f.Seq)
					}
				case <-sender.closed:
					return
				}
			}
		})
		testenv.Eventually(t, "some acks", func() bool { return acked.Load() > 20 })

		stopped := make(chan error, 1)
		go func() { stopped <- srv.stop() }()
		testenv.Eventually(t, "readyz 503", func() bool { return srv.status("/readyz") == http.StatusServiceUnavailable })
		if got := srv.dialWith(http.Header{"Authorization": {"Bearer " + bob.Token}}, ""); got != http.StatusServiceUnavailable && got != 0 {
			t.Errorf("upgrade while draining: got %d, want 503", got)
		}
		for i, c := range append(listeners, sender) {
			if code := c.waitClosed(10 * time.Second); code != websocket.CloseGoingAway {
				t.Errorf("client %d: got close code %d, want 1001", i, code)
			}
		}
		wg.Wait()
		if err := <-stopped; err != nil {
			t.Fatalf("run returned %v", err)
		}
		// Each listener saw an unbroken run from seq 1 until its 1001 (the
		// sender went on after some listeners were closed).
		for i, c := range listeners {
			var seqs []int64
			for len(c.frames) > 0 {
				if f := <-c.frames; f.Type == "message" {
					seqs = append(seqs, f.Seq)
				}
			}
			if len(seqs) == 0 {
				t.Fatalf("listener %d got no messages", i)
			}
			wantRun(t, fmt.Sprint("listener ", i), seqs, 1, int64(len(seqs)))
		}
		if env["DATABASE_URL"] != "" {
			// Every acked message is stored.
			again := startServer(t, env)
			var stored []int64
			for {
				page := again.mustHistory(alice.Token, room.ID, fmt.Sprintf("after_seq=%d&limit=500", len(stored)))
				if len(page) == 0 {
					break
				}
				stored = append(stored, seqsOf(page)...)
			}
			if n := int64(len(stored)); n < lastAck.Load() {
				t.Fatalf("got %d stored messages, want at least the %d acked", n, lastAck.Load())
			}
			wantRun(t, "stored after the drain", stored, 1, int64(len(stored)))
		}
	})
}

// While PostgreSQL is unreachable the server says so: /readyz turns 503 and
// sends are refused as unavailable, not acked. It recovers by itself.
func TestStoreOutageMakesTheServerUnready(t *testing.T) {
	t.Parallel()
	env := envFor(t, "postgres")
	dbURL, err := url.Parse(env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.StartProxy(t, dbURL.Host)
	dbURL.Host = proxy.Addr()
	env["DATABASE_URL"] = dbURL.String()
	srv := startServer(t, env)
	alice := srv.mustSignUp("alice")
	room := srv.mustCreateRoom(alice.Token, "lobby")
	c := srv.dial(alice.Token)
	c.join(room.ID, nil)

	proxy.Cut()
	testenv.Eventually(t, "readyz 503", func() bool { return srv.status("/readyz") == http.StatusServiceUnavailable })
	if got := srv.metric("parley_ready"); got != 0 {
		t.Fatalf("got parley_ready %v while the store is away, want 0", got)
	}
	c.send(map[string]any{"type": "send", "room": room.ID, "client_id": "during", "body": "lost?"})
	if f := c.expect("error"); f.Code != "unavailable" || f.Ref != "during" {
		t.Fatalf("got %+v, want an unavailable error for the send", f)
	}
	var out apiError
	if code := srv.call("POST", "/api/v1/rooms/"+room.ID+"/messages", alice.Token, map[string]string{"client_id": "rest", "body": "x"}, &out); code != http.StatusServiceUnavailable || out.Error.Code != "unavailable" {
		t.Fatalf("REST send: got %d %+v, want 503 unavailable", code, out.Error)
	}

	proxy.Restore()
	testenv.Eventually(t, "readyz 200", func() bool { return srv.status("/readyz") == http.StatusOK })
	if got := srv.metric("parley_ready"); got != 1 {
		t.Fatalf("got parley_ready %v after the store returned, want 1", got)
	}
	acks := sendN(t, c, room.ID, "after", 1)
	if acks[0].Seq != 1 {
		t.Fatalf("got seq %d after the outage, want 1 (nothing was stored during it)", acks[0].Seq)
	}
}
