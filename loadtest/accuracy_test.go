package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
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

	// What the server really did: for each ack and each delivery, the
	// time from receiving the send to finishing the write.
	truthMu            sync.Mutex
	ackTruth, delTruth []time.Duration
}

func (f *fakeServer) observe(into *[]time.Duration, received time.Time) {
	f.truthMu.Lock()
	*into = append(*into, time.Since(received))
	f.truthMu.Unlock()
}

// percentile of ds, nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(math.Ceil(p/100*float64(len(s))))-1)]
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
				f.observe(&f.ackTruth, received)
				for _, m := range members {
					m.write(map[string]any{"type": "message", "room": in.Room, "client_id": in.ClientID, "id": fmt.Sprint(id), "seq": seq,
						"user": map[string]string{"id": user, "username": user}, "body": "x", "ts": time.Now()})
					f.observe(&f.delTruth, received)
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
// between 20 and 520 ms: p50 is 20 ms and p99 about 470 ms, where a
// closed-loop generator would have sent almost nothing during the stall
// and reported a p99 near 20 ms.
//
// The reference is what the fake server really did (receipt of each send
// to the end of each write), since on a busy machine the burst at the
// stall's end queues for a while: the generator's percentiles must be
// within 15 ms plus 10% of those, and the stall must show in p99.
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
	err := run(context.Background(), []string{"-target", hs.URL, "-scenario", scenarioFile, "-json", result, "-quiet"}, env(nil), io.Discard, io.Discard)
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
	srv.truthMu.Lock()
	defer srv.truthMu.Unlock()
	for _, c := range []struct {
		metric string
		truth  []time.Duration
		p      float64
	}{
		{"ack_p50", srv.ackTruth, 50},
		{"ack_p99", srv.ackTruth, 99},
		{"delivery_p50", srv.delTruth, 50},
		{"delivery_p99", srv.delTruth, 99},
		{"delivery_max", srv.delTruth, 100},
	} {
		want := percentile(c.truth, c.p)
		margin := 15*time.Millisecond + want/10
		if got := r.Values[c.metric]; got < seconds(want-margin) || got > seconds(want+margin) {
			t.Errorf("%s = %.1f ms, the server's own record says %v (± %v)", c.metric, got*1000, want.Round(time.Millisecond), margin.Round(time.Millisecond))
		}
	}
	if got := r.Values["delivery_p99"]; got < seconds(stallFor*9/10+delay-early) {
		t.Errorf("delivery p99 %.1f ms hides the stall: it must be at least %v", got*1000, stallFor*9/10+delay-early)
	}
}
