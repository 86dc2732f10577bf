package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"github.com/parleychat/parley/server/internal/chat"
	"github.com/parleychat/parley/server/internal/memstore"
)

func TestPanicInAFrameClosesOnlyThatConnection(t *testing.T) {
	t.Parallel()
	api := startAPI(t, newPanickingStore(), Config{})
	room := api.mustCreateRoom("lobby")
	victim := api.mustDial(api.mustRegister("victim"))
	bystander := api.mustDial(api.mustRegister("bystander"))
	victim.mustJoin(room)
	bystander.mustJoin(room)

	victim.send(sendMsg(room, "boom", panicBody))
	if got := victim.closeCode(); got != websocket.CloseInternalServerErr {
		t.Errorf("panicking connection: got close code %d, want %d", got, websocket.CloseInternalServerErr)
	}

	bystander.send(sendMsg(room, "after", "still here"))
	if got := bystander.expect("message"); got.Body != "still here" {
		t.Errorf("bystander: got message %q, want %q", got.Body, "still here")
	}
	if got := bystander.expect("ack"); got.ClientID != "after" {
		t.Errorf("bystander: got ack for %q, want %q", got.ClientID, "after")
	}
	if got := api.metric("parley_panics_recovered_total", "where", "ws"); got != 1 {
		t.Errorf("got parley_panics_recovered_total{where=\"ws\"} = %v, want 1", got)
	}
	if got := api.logs.String(); !strings.Contains(got, "panic recovered") {
		t.Errorf("got log %q, want it to record the panic", got)
	}
}

func TestPanicInARESTHandlerAnswers500AndTheServerServesOn(t *testing.T) {
	t.Parallel()
	api := startAPI(t, newPanickingStore(), Config{})
	token := api.mustRegister("alice")
	room := api.mustCreateRoom("lobby")
	path := "/api/v1/rooms/" + room + "/messages"

	status, body := api.post(token, path, postMessageRequest{ClientID: "boom", Body: panicBody})
	if status != http.StatusInternalServerError {
		t.Errorf("panicking request: got status %d, want 500", status)
	}
	if got := errorCode(t, body); got != codeInternal {
		t.Errorf("panicking request: got error code %q, want %q (body %s)", got, codeInternal, body)
	}

	if status, body := api.post(token, path, postMessageRequest{ClientID: "next", Body: "hello"}); status != http.StatusCreated {
		t.Errorf("request after the panic: got status %d, want 201 (body %s)", status, body)
	}
	if got := api.metric("parley_panics_recovered_total", "where", "http"); got != 1 {
		t.Errorf("got parley_panics_recovered_total{where=\"http\"} = %v, want 1", got)
	}
}

func TestDrainAcksTheSendInFlightThenClosesEveryConnectionWith1001(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const jitter = 300 * time.Millisecond
		store := newGatedStore()
		api := startBubbledAPI(t, store, Config{DrainJitter: jitter})
		t.Cleanup(store.open) // first: a failed test must not leave the send held
		room := api.mustCreateRoom("lobby")
		sender := api.mustDial(api.mustRegister("sender"))
		idle := api.mustDial(api.mustRegister("idle"))

		// Drain finishes the frame in hand; a frame still unread in the
		// socket when the drain stops reading is dropped for the client to
		// retry. This send is in hand: read, and held in the store.
		sender.send(sendMsg(room, "last-words", "goodbye"))
		synctest.Wait()
		if got := api.metric("parley_ws_frames_in_total", "type", frameSend); got != 1 {
			t.Fatalf("got %v send frames read, want 1 held in the store", got)
		}
		drained := api.drainInBackground(waitFor)
		// Every connection's moment to close comes while the send is held.
		time.Sleep(jitter)
		synctest.Wait()
		store.open()

		if got := sender.expect("ack"); got.ClientID != "last-words" {
			t.Errorf("got ack for %q, want %q", got.ClientID, "last-words")
		}
		for name, c := range map[string]*wsClient{"sender": sender, "idle": idle} {
			if got := c.closeCode(); got != websocket.CloseGoingAway {
				t.Errorf("%s: got close code %d, want %d", name, got, websocket.CloseGoingAway)
			}
		}
		if err := api.drainResult(drained); err != nil {
			t.Errorf("got Drain() = %v, want nil", err)
		}

		resp := api.mustFailToDial(api.mustRegister("latecomer"))
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("upgrade after Drain: got status %d, want 503", resp.StatusCode)
		}
		if got := errorCode(t, mustReadAll(t, resp.Body)); got != codeUnavailable {
			t.Errorf("upgrade after Drain: got error code %q, want %q", got, codeUnavailable)
		}
	})
}

// gatedStore is the in-memory store with appends that wait until the test
// opens the gate, which keeps a send in the server's hands.
type gatedStore struct {
	*memstore.Store
	gate     chan struct{}
	openOnce sync.Once
}

func newGatedStore() *gatedStore {
	return &gatedStore{Store: memstore.New(memstore.Options{}), gate: make(chan struct{})}
}

func (s *gatedStore) open() { s.openOnce.Do(func() { close(s.gate) }) }

func (s *gatedStore) Append(ctx context.Context, d chat.Draft) (chat.Message, bool, error) {
	<-s.gate
	return s.Store.Append(ctx, d)
}

func TestDrainThatRunsOutOfTimeClosesEveryConnectionAnyway(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		// No connection's turn to close comes within the context.
		api := startBubbledAPI(t, memstore.New(memstore.Options{}), Config{DrainJitter: time.Hour})
		first := api.mustDial(api.mustRegister("first"))
		second := api.mustDial(api.mustRegister("second"))
		// The client has its 101 before the server counts the connection:
		// a drain that began in between would refuse it at once.
		synctest.Wait()

		drained := api.drainInBackground(100 * time.Millisecond)

		if err := api.drainResult(drained); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got Drain() = %v, want %v", err, context.DeadlineExceeded)
		}
		first.waitEnded()
		second.waitEnded()
	})
}

func TestMetricsFollowAScriptedSession(t *testing.T) {
	t.Parallel()
	api := startAPI(t, memstore.New(memstore.Options{}), Config{})
	room := api.mustCreateRoom("lobby")

	resp := api.mustFailToDial("not-a-token")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("upgrade with a bad token: got status %d, want 401", resp.StatusCode)
	}
	c := api.mustDial(api.mustRegister("alice"))
	c.sendRaw("not json")
	if got := c.expect("error"); got.Code != codeBadRequest {
		t.Errorf("got error code %q for a frame that is not JSON, want %q", got.Code, codeBadRequest)
	}
	// The connection is counted before its first frame is read.
	if got := api.metric("parley_ws_connections"); got != 1 {
		t.Errorf("got parley_ws_connections = %v while connected, want 1", got)
	}
	c.send(sendMsg(room, "c1", "hello"))
	c.expect("ack")
	c.closeNormally()

	api.waitAllEnded()
	for _, m := range []struct {
		name, label, value string
		want               float64
	}{
		{"parley_ws_connections", "", "", 0},
		{"parley_ws_disconnects_total", "code", "1000", 1},
		{"parley_ws_upgrades_total", "result", "ok", 1},
		{"parley_ws_upgrades_total", "result", "unauthorized", 1},
		{"parley_ws_frames_in_total", "type", frameSend, 1},
		{"parley_ws_frames_in_total", "type", "invalid", 1},
		{"parley_ws_frames_in_total", "type", frameJoin, 0},
		{"parley_ws_rate_limited_frames_total", "", "", 0},
		{"parley_panics_recovered_total", "where", "ws", 0},
	} {
		if got := api.metric(m.name, m.label, m.value); got != m.want {
			t.Errorf("got %s{%s=%q} = %v, want %v", m.name, m.label, m.value, got, m.want)
		}
	}
}

func TestRateLimitedFramesAreRefusedAndCounted(t *testing.T) {
	t.Parallel()
	// The clock stands still, so no token comes back between the frames.
	api := startAPI(t, memstore.New(memstore.Options{}), Config{ConnRate: 1, Now: clockAt(time.Now())})
	c := api.mustDial(api.mustRegister("alice"))

	// A burst of two frames is allowed (each is refused for not having
	// joined); the third within the second is rate limited.
	wantCodes := []string{codeBadRequest, codeBadRequest, codeRateLimited}
	for i, want := range wantCodes {
		c.send(map[string]any{"type": frameTyping, "room": "nowhere"})
		got := c.expect("error")
		if got.Code != want {
			t.Errorf("frame %d: got error code %q, want %q", i+1, got.Code, want)
		}
		if got.Ref != frameTyping {
			t.Errorf("frame %d: got ref %q, want %q", i+1, got.Ref, frameTyping)
		}
	}
	if got := api.metric("parley_ws_rate_limited_frames_total"); got != 1 {
		t.Errorf("got parley_ws_rate_limited_frames_total = %v, want 1", got)
	}
}

func TestAFractionalConnRateStillAllowsFrames(t *testing.T) {
	t.Parallel()
	// 0.4 frames a second is a valid PARLEY_CONN_RATE: a burst of 0.8
	// rounds down to 0, and a bucket that holds no token refuses everything.
	api := startAPI(t, memstore.New(memstore.Options{}), Config{ConnRate: 0.4})
	c := api.mustDial(api.mustRegister("alice"))

	c.send(map[string]any{"type": frameTyping, "room": "nowhere"})
	if got := c.expect("error"); got.Code != codeBadRequest {
		t.Errorf("first frame: got error code %q, want %q (join the room first)", got.Code, codeBadRequest)
	}
}

func TestInvalidFramesCountAgainstTheConnectionRate(t *testing.T) {
	t.Parallel()
	// Otherwise a client can make the server decode and answer invalid frames
	// as fast as it can send them, and never be closed with 4029.
	api := startAPI(t, memstore.New(memstore.Options{}), Config{ConnRate: 1, Now: clockAt(time.Now())})
	c := api.mustDial(api.mustRegister("alice"))

	wantCodes := []string{codeBadRequest, codeBadRequest, codeRateLimited}
	for i, want := range wantCodes {
		c.sendRaw("not json")
		if got := c.expect("error"); got.Code != want {
			t.Errorf("invalid frame %d: got error code %q, want %q", i+1, got.Code, want)
		}
	}
}

func TestAPlainGETOfTheWebSocketEndpointGetsTheErrorEnvelope(t *testing.T) {
	t.Parallel()
	api := startAPI(t, memstore.New(memstore.Options{}), Config{})
	req, err := http.NewRequest(http.MethodGet, api.base+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+api.mustRegister("alice"))
	resp, err := api.client.Do(req)
	if err != nil {
		t.Fatalf("GET /ws: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("got status %d, want 400", resp.StatusCode)
	}
	if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, "application/json") {
		t.Errorf("got Content-Type %q, want application/json", got)
	}
	var env errorBody
	if err := json.Unmarshal(mustReadAll(t, resp.Body), &env); err != nil || env.Error.Code != codeBadRequest {
		t.Errorf("got body that is not the error envelope with code %q (%v)", codeBadRequest, err)
	}
}
