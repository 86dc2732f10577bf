package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleychat/parley/server/internal/memstore"
)

// answer is a frame as these tests read it: what harness's frame holds, and
// a refusal's wait.
type answer struct {
	frame
	RetryAfter float64 `json:"retry_after"`
}

// rawClient is a socket that the test reads itself, frame by frame, at the
// pace it chooses: unlike wsClient, nothing reads ahead of the test.
type rawClient struct {
	t  *testing.T
	ws *websocket.Conn
}

func (a *testAPI) mustDialRaw(token string) *rawClient {
	a.t.Helper()
	ws, _, err := a.dial(token)
	if err != nil {
		a.t.Fatalf("dial: %v", err)
	}
	// Pongs are queued, as browsers do, rather than written by the reader
	// itself: gorilla's default would hold the reader until its pong is
	// written, and give the connection up if that takes a second, which
	// on a socket with no buffer (the bubble's pipes) is as long as the
	// server does not read.
	var pongs sync.WaitGroup
	ws.SetPingHandler(func(data string) error {
		pongs.Go(func() { ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(waitFor)) })
		return nil
	})
	a.t.Cleanup(func() {
		ws.Close()
		pongs.Wait()
	})
	return &rawClient{t: a.t, ws: ws}
}

// read returns the next frame, or the error that ended the connection.
func (c *rawClient) read() (answer, error) {
	c.ws.SetReadDeadline(time.Now().Add(waitFor))
	_, data, err := c.ws.ReadMessage()
	if err != nil {
		return answer{}, err
	}
	var f answer
	if err := json.Unmarshal(data, &f); err != nil {
		return answer{}, fmt.Errorf("server sent a frame that is not JSON: %q", data)
	}
	return f, nil
}

// flood writes frames back to back from a goroutine, as fast as the server
// takes them; wait returns the first write error, if any.
func (c *rawClient) flood(frames []any) (wait func() error) {
	var wg sync.WaitGroup
	var err error
	wg.Go(func() {
		for _, f := range frames {
			c.ws.SetWriteDeadline(time.Now().Add(time.Minute))
			if err = c.ws.WriteJSON(f); err != nil {
				return
			}
		}
	})
	return func() error { wg.Wait(); return err }
}

// closeCode returns the code of a close error, or -1.
func closeCodeOf(err error) int {
	if ce := (*websocket.CloseError)(nil); errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}

// A client on a slow link that sends 1,000 frames back to back and reads
// everything is answered 1,000 times and stays connected: its reader is
// slowed down to the pace its replies drain, not closed with 4008 (issue
// 16, finding 3). Pings go on meanwhile, and the read deadline does not
// expire while the reader waits for the queue.
func TestAFastSenderOnASlowLinkIsSlowedNotClosed(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		api := startBubbledAPI(t, memstore.New(memstore.Options{}), Config{
			ConnRate:     1e6, // the connection's own rate limit is not what this is about
			PingInterval: 50 * time.Millisecond,
		})
		room := api.mustCreateRoom("lobby")
		c := api.mustDialRaw(api.mustRegister("alice"))
		const n = 1000
		start := time.Now()
		sent := c.flood(leaves(room, n))
		for answered := 0; answered < n; answered++ {
			f, err := c.read()
			if err != nil {
				t.Fatalf("connection ended after %d answers of %d: %v (close code %d)\n%s", answered, n, err, closeCodeOf(err), api.logs.String())
			}
			if f.Type != "error" || (f.Code != codeBadRequest && f.Code != codeRateLimited) {
				t.Fatalf("answer %d: got %+v, want an error frame (not in this room, or rate limited)", answered+1, f)
			}
			time.Sleep(time.Millisecond) // a slow link: a thousand frames a second
		}
		if err := sent(); err != nil {
			t.Fatalf("writing the frames: %v", err)
		}
		if got := api.metric("parley_ws_slow_consumer_closes_total"); got != 0 {
			t.Errorf("got %v slow-consumer closes, want 0", got)
		}
		t.Logf("%d frames answered in %v of the bubble's time, with no close", n, time.Since(start))
		c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(waitFor))
		for {
			if _, err := c.read(); err != nil {
				if got := closeCodeOf(err); got != websocket.CloseNormalClosure {
					t.Errorf("got close %d (%v) after the client's 1000, want 1000", got, err)
				}
				break
			}
		}
	})
}

// A client that sends frames and reads nothing at all still ends: the
// reader waits for a queue that never drains, and the writer's timeout
// ends the connection, which ends the wait.
func TestAClientThatReadsNothingStillEnds(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		api := startBubbledAPI(t, memstore.New(memstore.Options{}), Config{ConnRate: 1e6, WriteTimeout: time.Second})
		room := api.mustCreateRoom("lobby")
		c := api.mustDialRaw(api.mustRegister("alice"))
		sent := c.flood(leaves(room, 1000))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got := api.metric("parley_ws_connections"); got != 0 {
			t.Fatalf("got %v connections open after the write timeout, want 0", got)
		}
		if got := api.metric("parley_ws_disconnects_total", "code", "1006"); got != 1 {
			t.Errorf("got %v connections lost, want 1 (the write timed out)", got)
		}
		c.ws.Close()
		sent()
	})
}

// Joining 100 rooms on one socket in a burst is answered join by join,
// each with joined or rate_limited and the wait to honour; a client that
// honours it joins every room, and is never closed for it (issue 16,
// findings 3 and 4).
func TestJoiningManyRoomsIsPacedByRetryAfter(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		api := startBubbledAPI(t, memstore.New(memstore.Options{}), Config{})
		const n = 100
		rooms := make([]string, n)
		frames := make([]any, n)
		for i := range rooms {
			rooms[i] = api.mustCreateRoom(fmt.Sprint("room-", i))
			frames[i] = map[string]any{"type": frameJoin, "room": rooms[i]}
		}
		c := api.mustDialRaw(api.mustRegister("alice"))
		start := time.Now()

		// The burst: every join is answered.
		sent := c.flood(frames)
		joined := make(map[string]bool)
		var refused []answer
		for len(joined)+len(refused) < n {
			f, err := c.read()
			if err != nil {
				t.Fatalf("connection ended after %d joined and %d refused: %v (close code %d)", len(joined), len(refused), err, closeCodeOf(err))
			}
			switch {
			case f.Type == "joined":
				joined[f.Room] = true
			case f.Type == "error" && f.Code == codeRateLimited && f.Ref == frameJoin:
				if f.RetryAfter < 0.001 {
					t.Fatalf("got rate_limited with retry_after %v, want at least 0.001", f.RetryAfter)
				}
				refused = append(refused, f)
			default:
				t.Fatalf("got %+v, want joined or rate_limited", f)
			}
			time.Sleep(time.Millisecond)
		}
		if err := sent(); err != nil {
			t.Fatal(err)
		}
		t.Logf("burst of %d joins: %d joined, %d refused with retry_after (first %.3fs)", n, len(joined), len(refused), refused[0].RetryAfter)

		// The retries, one at a time, each after the wait the server asked.
		retries := 0
		for _, room := range rooms {
			for !joined[room] {
				retries++
				if retries > 10*n {
					t.Fatalf("still not joined to every room after %d retries", retries)
				}
				if err := c.ws.WriteJSON(map[string]any{"type": frameJoin, "room": room}); err != nil {
					t.Fatal(err)
				}
				f, err := c.read()
				if err != nil {
					t.Fatalf("connection ended while retrying: %v (close code %d)", err, closeCodeOf(err))
				}
				switch {
				case f.Type == "joined" && f.Room == room:
					joined[room] = true
				case f.Type == "error" && f.Code == codeRateLimited:
					time.Sleep(time.Duration(f.RetryAfter * float64(time.Second)))
				default:
					t.Fatalf("got %+v, want joined or rate_limited", f)
				}
			}
		}
		t.Logf("all %d rooms joined after %d resends, in %v of the bubble's time", n, retries, time.Since(start))
		if got := api.metric("parley_rate_limited_total", "limit", limitWSFrames); got == 0 {
			t.Errorf("got parley_rate_limited_total{limit=%q} = 0, want the refusals counted", limitWSFrames)
		}
		if got := api.metric("parley_ws_rate_limited_frames_total"); got == 0 {
			t.Error("got parley_ws_rate_limited_frames_total = 0, want the refusals counted there too")
		}
	})
}

// A client that resumes with since, with more history to replay than its
// queue holds, into a room whose messages come as fast as it reads, gets
// the whole replay and the live messages after it, and is not closed: the
// replay, like every answer to the client's own frames, leaves half of the
// queue to what the room fans out.
func TestAResumeLongerThanTheQueueIntoABusyRoomIsNotClosed(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		api := startBubbledAPI(t, memstore.New(memstore.Options{}), Config{UserRate: 1e6})
		room := api.mustCreateRoom("lobby")
		author, err := api.auth.Verify(t.Context(), api.mustRegister("author"))
		if err != nil {
			t.Fatal(err)
		}
		send := func(clientID string) {
			if _, _, err := api.chat.Send(t.Context(), author.User, room, clientID, "hi"); err != nil {
				t.Fatal(err)
			}
		}
		const history, live = 1000, 1000
		for i := range history {
			send(fmt.Sprint("old-", i))
		}
		c := api.mustDialRaw(api.mustRegister("reader"))
		if err := c.ws.WriteJSON(map[string]any{"type": frameJoin, "room": room, "since": 0}); err != nil {
			t.Fatal(err)
		}
		// A message arrives for every third frame the client reads (or
		// when it has read them all), until the live ones run out, well
		// after the replay.
		var last int64
		for sent, reads := 0, 0; last < history+live; reads++ {
			synctest.Wait()
			if sent < live && (reads%3 == 0 || last == int64(history+sent)) {
				send(fmt.Sprint("new-", sent))
				sent++
			}
			f, err := c.read()
			if err != nil {
				t.Fatalf("connection ended at seq %d of %d: %v (close code %d)", last, history+live, err, closeCodeOf(err))
			}
			if f.Type == "message" {
				if f.Seq != last+1 {
					t.Fatalf("got seq %d after %d, want %d", f.Seq, last, last+1)
				}
				last = f.Seq
			}
		}
	})
}

// A drain that comes while the reader waits for its queue closes the
// connection with 1001, after the answers already queued.
func TestADrainEndsAReaderWaitingForItsQueueWith1001(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		api := startBubbledAPI(t, memstore.New(memstore.Options{}), Config{ConnRate: 1e6, DrainJitter: time.Millisecond})
		room := api.mustCreateRoom("lobby")
		c := api.mustDialRaw(api.mustRegister("alice"))
		sent := c.flood(leaves(room, 1000))
		synctest.Wait() // the reader waits: the client reads nothing yet
		drained := api.drainInBackground(waitFor)
		answers := 0
		for {
			f, err := c.read()
			if err != nil {
				if got := closeCodeOf(err); got != websocket.CloseGoingAway {
					t.Fatalf("got %v (close code %d) after %d answers, want 1001", err, got, answers)
				}
				break
			}
			if f.Type == "error" {
				answers++
			}
			time.Sleep(time.Millisecond)
		}
		if answers <= api.server.cfg.SendQueue/2 {
			t.Errorf("got %d answers before the close, want the %d or more queued when the drain came", answers, api.server.cfg.SendQueue/2)
		}
		if err := api.drainResult(drained); err != nil {
			t.Errorf("got Drain() = %v, want nil", err)
		}
		c.ws.Close()
		sent()
	})
}

// leaves is n leave frames for room, each answered with an error frame
// (the client never joined): n answers to frames of the client's own.
func leaves(room string, n int) []any {
	frames := make([]any, n)
	for i := range frames {
		frames[i] = map[string]any{"type": frameLeave, "room": room}
	}
	return frames
}
