package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// fakeServer speaks just enough of the protocol to be driven, and answers
// every send after a delay it chooses: a known delay, so that the
// generator's figures can be checked against it.
type fakeServer struct {
	delay func(received time.Time) time.Time // when to answer a send received then

	mu      sync.Mutex
	rooms   map[string][]*fakeConn
	seqs    map[string]int64
	nextID  int
	pending sync.WaitGroup
}

type fakeConn struct {
	ws *websocket.Conn
	mu sync.Mutex
}

func (c *fakeConn) write(v any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.ws.WriteJSON(v)
}

func newFakeServer(delay func(time.Time) time.Time) *fakeServer {
	return &fakeServer{delay: delay, rooms: map[string][]*fakeConn{}, seqs: map[string]int64{}}
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var in struct{ Username, Name string }
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/api/v1/users":
		_ = json.NewDecoder(r.Body).Decode(&in)
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"user":{"id":%q,"username":%q},"token":%q}`, in.Username, in.Username, in.Username)
	case r.Method == http.MethodPost && r.URL.Path == "/api/v1/rooms":
		_ = json.NewDecoder(r.Body).Decode(&in)
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"room":{"id":%q,"name":%q,"last_seq":0}}`, "room-"+in.Name, in.Name)
	case r.URL.Path == "/ws":
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		f.serve(&fakeConn{ws: ws}, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeServer) serve(c *fakeConn, user string) {
	defer c.ws.Close()
	for {
		var in struct {
			Type, Room string
			ClientID   string `json:"client_id"`
		}
		if err := c.ws.ReadJSON(&in); err != nil {
			return
		}
		received := time.Now()
		switch in.Type {
		case "join":
			f.mu.Lock()
			f.rooms[in.Room] = append(f.rooms[in.Room], c)
			last := f.seqs[in.Room]
			f.mu.Unlock()
			c.write(map[string]any{"type": "joined", "room": in.Room, "last_seq": last})
		case "send":
			f.mu.Lock()
			f.seqs[in.Room]++
			f.nextID++
			seq, id, members := f.seqs[in.Room], f.nextID, f.rooms[in.Room]
			f.mu.Unlock()
			f.pending.Add(1)
			time.AfterFunc(time.Until(f.delay(received)), func() {
				defer f.pending.Done()
				c.write(map[string]any{"type": "ack", "room": in.Room, "client_id": in.ClientID, "id": fmt.Sprint(id), "seq": seq})
				for _, m := range members {
					m.write(map[string]any{"type": "message", "room": in.Room, "client_id": in.ClientID, "id": fmt.Sprint(id), "seq": seq,
						"user": map[string]string{"id": user, "username": user}, "body": "x", "ts": time.Now()})
				}
			})
		}
	}
}

// The generator reports the latencies a server imposes, including a stall:
// the fake server answers every send 20 ms after receiving it, except that
// for half a second, two seconds in, it answers nothing and then
// everything at once. An open model keeps sending through the stall, and
// measuring from the intended send time, a tenth of the messages wait
// between 20 and 520 ms. So p50 is 20 ms, p99 about 470 ms (the top tenth
// of the stalled tenth) and max about 520 ms; a closed-loop generator
// would have sent almost nothing during the stall and reported a p99 near
// 20 ms. Figures may come out 15 ms early (sends leave up to 200 µs early,
// timers fire late) and later by up to 30 ms in steady state, or 100 ms at
// the end of the stall, where 500 answers leave at once and queue behind
// each other (the race detector and a busy machine stretch that queue).
func TestLatencyAccuracyWithAStall(t *testing.T) {
	const (
		delay    = 20 * time.Millisecond
		stallAt  = 2 * time.Second
		stallFor = 500 * time.Millisecond
		early    = 15 * time.Millisecond
	)
	var (
		firstMu sync.Mutex
		first   time.Time
	)
	srv := newFakeServer(func(received time.Time) time.Time {
		firstMu.Lock()
		if first.IsZero() {
			first = received
		}
		stallStart := first.Add(stallAt)
		firstMu.Unlock()
		if !received.Before(stallStart) && received.Before(stallStart.Add(stallFor)) {
			return stallStart.Add(stallFor + delay)
		}
		return received.Add(delay)
	})
	hs := httptest.NewServer(srv)
	defer hs.Close()

	dir := t.TempDir()
	scenarioFile := filepath.Join(dir, "accuracy.yaml")
	os.WriteFile(scenarioFile, []byte(`
name: accuracy
users: {count: 4}
rooms: [{name: r, count: 1, members: 4}]
stages: [{name: steady, duration: 5s, rate: 200}]
drain: 3s
thresholds: ["lost == 0"]
`), 0o644)
	result := filepath.Join(dir, "result.json")
	err := run(context.Background(), []string{"-target", hs.URL, "-scenario", scenarioFile, "-json", result, "-quiet"}, io.Discard, io.Discard)
	srv.pending.Wait()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(result)
	var r struct {
		Counts struct{ Sent, Acked, Lost int64 }
		Values map[string]float64
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	if r.Counts.Sent != 1000 || r.Counts.Acked != 1000 || r.Counts.Lost != 0 {
		t.Fatalf("got %+v, want 1000 sends, all acked, none lost", r.Counts)
	}
	t.Logf("injected 20 ms and a 500 ms stall: ack p50 %.1f ms p99 %.1f ms; delivery p50 %.1f ms p99 %.1f ms max %.1f ms",
		r.Values["ack_p50"]*1000, r.Values["ack_p99"]*1000, r.Values["delivery_p50"]*1000, r.Values["delivery_p99"]*1000, r.Values["delivery_max"]*1000)
	seconds := func(d time.Duration) float64 { return d.Seconds() }
	for _, c := range []struct {
		metric     string
		want, late time.Duration
	}{
		{"ack_p50", delay, 30 * time.Millisecond},
		{"delivery_p50", delay, 30 * time.Millisecond},
		{"ack_p99", stallFor*9/10 + delay, 100 * time.Millisecond}, // 470 ms: see above
		{"delivery_p99", stallFor*9/10 + delay, 100 * time.Millisecond},
		{"delivery_max", stallFor + delay, 100 * time.Millisecond},
	} {
		got := r.Values[c.metric]
		if got < seconds(c.want-early) || got > seconds(c.want+c.late) {
			t.Errorf("%s = %.1f ms, want %v, at most %v early or %v late", c.metric, got*1000, c.want, early, c.late)
		}
	}
}
