package httpapi

import (
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleychat/parley/server/internal/memstore"
)

// mustJoinPaced joins room as a client that honours retry_after: a refused
// join is sent again once the wait the server asked for has passed.
func (c *rawClient) mustJoinPaced(room string) {
	c.t.Helper()
	for range 100 {
		if err := c.ws.WriteJSON(map[string]any{"type": frameJoin, "room": room}); err != nil {
			c.t.Fatalf("write join: %v", err)
		}
		f, err := c.read()
		if err != nil {
			c.t.Fatalf("read the answer to a join: %v", err)
		}
		switch {
		case f.Type == "joined":
			return
		case f.Type == "error" && f.Code == codeRateLimited:
			time.Sleep(time.Duration(f.RetryAfter * float64(time.Second)))
		default:
			c.t.Fatalf("got %+v, want joined or rate_limited", f)
		}
	}
	c.t.Fatal("still not joined after 100 tries")
}

// discardAll reads and drops every frame until the connection ends, as a
// client that keeps up does.
func (c *rawClient) discardAll(wg *sync.WaitGroup) {
	wg.Go(func() {
		for {
			if _, _, err := c.ws.ReadMessage(); err != nil {
				return
			}
		}
	})
}

// connOf returns the server's connection of the user named username.
func (a *testAPI) connOf(username string) *conn {
	a.t.Helper()
	a.server.mu.Lock()
	defer a.server.mu.Unlock()
	for c := range a.server.conns {
		if c.user.Username == username {
			return c
		}
	}
	a.t.Fatalf("no connection of %s", username)
	return nil
}

// One user with 150 sockets sending typing at 19/s on each into a room
// where a member is on a slow link (100 frames a second) does not get that
// member closed as too slow: the member hears of the typing about once a
// second (issue 16, finding 2).
func TestTypingFromManySocketsOfOneUserDoesNotOverflowAMember(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		// The cap on connections per user is per replica, and is not what
		// this test is about.
		api := startBubbledAPI(t, memstore.New(memstore.Options{}), Config{MaxConnsPerUser: 1000})
		room := api.mustCreateRoom("lobby")
		slow := api.mustDialRaw(api.mustRegister("slow"))
		slow.mustJoinPaced(room)

		const sockets, perSecond, seconds = 150, 19, 3
		token := api.mustRegister("typist")
		var readers, typists sync.WaitGroup
		conns := make([]*rawClient, sockets)
		for i := range conns {
			conns[i] = api.mustDialRaw(token)
			conns[i].mustJoinPaced(room)
			conns[i].discardAll(&readers)
		}
		// Whatever the outcome, the typists stop and the sockets close
		// before the bubble ends.
		stop := make(chan struct{})
		defer func() {
			close(stop)
			for _, c := range conns {
				c.ws.Close()
			}
			typists.Wait()
			readers.Wait()
		}()
		start := time.Now()
		for _, c := range conns {
			typists.Go(func() {
				for range perSecond * seconds {
					if c.ws.WriteJSON(map[string]any{"type": frameTyping, "room": room}) != nil {
						return
					}
					select {
					case <-stop:
						return
					case <-time.After(time.Second / perSecond):
					}
				}
			})
		}

		// The slow member reads a frame every 10ms until the typing stops
		// and nothing more comes.
		member := api.connOf("slow")
		typing, deepest := 0, 0
		for {
			deepest = max(deepest, member.out.length())
			f, err := slow.read()
			var netErr net.Error
			if errors.As(err, &netErr) && netErr.Timeout() {
				break
			}
			if err != nil {
				t.Fatalf("slow member's connection ended after %d typing frames: %v (close code %d)", typing, err, closeCodeOf(err))
			}
			if f.Type == frameTyping {
				typing++
			}
			time.Sleep(10 * time.Millisecond)
		}
		typists.Wait()
		t.Logf("%d sockets typing %d/s for %ds: the slow member got %d typing frames, its queue at most %d deep",
			sockets, perSecond, seconds, typing, deepest)
		if typing > seconds+1 {
			t.Errorf("got %d typing frames in %v, want at most one a second", typing, time.Since(start).Round(time.Second))
		}
		if got := api.metric("parley_ws_slow_consumer_closes_total"); got != 0 {
			t.Errorf("got %v slow-consumer closes, want 0", got)
		}
		if got := api.metric("parley_rate_limited_total", "limit", limitWSTyping); got == 0 {
			t.Errorf("got parley_rate_limited_total{limit=%q} = 0, want the typist's excess refused", limitWSTyping)
		}
	})
}

// A user cycling join and leave on many sockets, as fast as the server
// lets it, is held to the per-user join rate over all of them, and so are
// the presence frames the room's members get about that user.
func TestJoinLeaveChurnOfOneUserIsLimitedAcrossSockets(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		api := startBubbledAPI(t, memstore.New(memstore.Options{}), Config{JoinRate: 10, JoinBurst: 20})
		room := api.mustCreateRoom("lobby")
		token := api.mustRegister("churner")
		const sockets, rounds = 10, 20
		var sent sync.WaitGroup
		var mu sync.Mutex
		accepted := 0
		for range sockets {
			c := api.mustDialRaw(token) // closed by the test's cleanup
			sent.Go(func() {
				for range rounds {
					for _, typ := range []string{frameJoin, frameLeave} {
						if c.ws.WriteJSON(map[string]any{"type": typ, "room": room}) != nil {
							return
						}
						f, err := c.read()
						if err != nil {
							t.Errorf("churning socket ended: %v", err)
							return
						}
						switch {
						case f.Type == "joined" || f.Type == "left":
							mu.Lock()
							accepted++
							mu.Unlock()
						case f.Code == codeRateLimited:
							// As fast as the server lets it.
							time.Sleep(time.Duration(f.RetryAfter * float64(time.Second)))
						}
					}
				}
			})
		}
		start := time.Now()
		sent.Wait()
		elapsed := time.Since(start)
		// The burst, then the rate, over every socket together.
		if limit := 20 + int(10*elapsed.Seconds()) + 1; accepted > limit {
			t.Errorf("got %d joins and leaves accepted in %v, want at most %d", accepted, elapsed, limit)
		}
		if got := api.metric("parley_rate_limited_total", "limit", limitWSJoins); got == 0 {
			t.Errorf("got parley_rate_limited_total{limit=%q} = 0, want the churn refused", limitWSJoins)
		}
		t.Logf("%d sockets of one user cycling join and leave: %d accepted in %v", sockets, accepted, elapsed)
	})
}

// 3,000 upgrades of one user's token get at most the cap of connections;
// the rest are refused with 429 and a Retry-After before any socket is
// opened, and the count goes down as connections end (issue 16, finding 1).
func TestConnectionsPerUserAreCapped(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const limit, attempts = 32, 3000
		api := startBubbledAPI(t, memstore.New(memstore.Options{}), Config{MaxConnsPerUser: limit})
		token := api.mustRegister("hoarder")

		var mu sync.Mutex
		var opened []*websocket.Conn
		statuses := make(map[int]int)
		retryAfter := make(map[string]int)
		var dials sync.WaitGroup
		for range attempts {
			dials.Go(func() {
				ws, resp, err := api.dial(token)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					opened = append(opened, ws)
				case resp != nil:
					statuses[resp.StatusCode]++
					retryAfter[resp.Header.Get("Retry-After")]++
					if resp.StatusCode == http.StatusTooManyRequests {
						if code := errorCode(t, mustReadAll(t, resp.Body)); code != codeRateLimited {
							t.Errorf("got code %q in a 429, want %q", code, codeRateLimited)
						}
					}
				default:
					statuses[0]++
				}
			})
		}
		dials.Wait()
		t.Logf("%d upgrades of one user: %d connections, refusals by status %v", attempts, len(opened), statuses)
		if len(opened) != limit {
			t.Errorf("got %d connections, want %d", len(opened), limit)
		}
		if statuses[http.StatusTooManyRequests] != attempts-limit {
			t.Errorf("got refusals by status %v, want %d × 429", statuses, attempts-limit)
		}
		if retryAfter["5"] != attempts-limit {
			t.Errorf("got Retry-After values %v, want 5 on every refusal", retryAfter)
		}
		if got := api.metric("parley_rate_limited_total", "limit", limitConnsPerUser); got != attempts-limit {
			t.Errorf("got parley_rate_limited_total{limit=%q} = %v, want %d", limitConnsPerUser, got, attempts-limit)
		}

		// Another user is not held back by this one's cap.
		other := api.mustDialRaw(api.mustRegister("other"))
		other.ws.Close()

		// Every slot comes back as its connection ends.
		for _, ws := range opened {
			ws.Close()
		}
		synctest.Wait()
		api.server.ws.conns.mu.Lock()
		left := len(api.server.ws.conns.open)
		api.server.ws.conns.mu.Unlock()
		if left != 0 {
			t.Errorf("got %d users still counted after every connection ended, want 0", left)
		}
		again := api.mustDialRaw(token)
		again.ws.Close()
	})
}

// A close frame with a one-byte payload is malformed (RFC 6455 §5.5.1), and
// is answered with 1002 (docs/protocol.md, close codes).
func TestAOneByteClosePayloadIsAProtocolError(t *testing.T) {
	t.Parallel()
	api := startAPI(t, memstore.New(memstore.Options{}), Config{})
	c := api.mustDialRaw(api.mustRegister("alice"))
	mask := [4]byte{1, 2, 3, 4}
	frame := []byte{0x88, 0x80 | 1, mask[0], mask[1], mask[2], mask[3], 0x03 ^ mask[0]}
	if _, err := c.ws.NetConn().Write(frame); err != nil {
		t.Fatal(err)
	}
	_, err := c.read()
	if got := closeCodeOf(err); got != websocket.CloseProtocolError {
		t.Fatalf("got %v (close code %d), want 1002", err, got)
	}
}
