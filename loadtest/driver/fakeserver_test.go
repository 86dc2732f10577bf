package driver

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// testConfig is a quiet run of scenario against target, with the command
// line's defaults.
func testConfig(target, scenario string) Config {
	return Config{
		Targets: []string{target}, Scenario: scenario, RunID: "test", TLS: &tls.Config{MinVersion: tls.VersionTLS12},
		MaxRate: 2000, MaxDuration: 15 * time.Minute, Password: "loadtest-password", SetupConcurrency: 16, Quiet: true, TraceRatio: 0.1,
	}
}

// fakeServer speaks just enough of the protocol to be driven, and answers
// every send after a delay it chooses: a known delay, so that the
// generator's figures can be checked against it.
type fakeServer struct {
	delay func(received time.Time) time.Time // when to answer a send received then
	// refuseFirst, when set, refuses the first attempt of every sign-up,
	// room creation, join (of each connection) and send as rate limited,
	// asking for this wait, the way the server's limits answer: 429 with
	// Retry-After in whole seconds and retry_after in the envelope over
	// REST, an error frame with retry_after over WebSocket.
	refuseFirst time.Duration
	tried       map[string]bool // attempts seen, under mu

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
	return &fakeServer{delay: delay, rooms: map[string][]*fakeConn{}, seqs: map[string]int64{}, tried: map[string]bool{}}
}

// firstTry reports whether the attempt named key is to be refused: when
// the server refuses first attempts, and this is the first.
func (f *fakeServer) firstTry(key string) bool {
	if f.refuseFirst == 0 {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tried[key] {
		return false
	}
	f.tried[key] = true
	return true
}

func (f *fakeServer) refuseREST(w http.ResponseWriter) {
	w.Header().Set("Retry-After", fmt.Sprint(int(math.Ceil(f.refuseFirst.Seconds()))))
	w.WriteHeader(http.StatusTooManyRequests)
	fmt.Fprintf(w, `{"error":{"code":"rate_limited","message":"slow down","retry_after":%g}}`, f.refuseFirst.Seconds())
}

func (f *fakeServer) refuseFrame(c *fakeConn, ref string) {
	c.write(map[string]any{"type": "error", "code": "rate_limited", "message": "slow down", "ref": ref, "retry_after": f.refuseFirst.Seconds()})
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var in struct{ Username, Name string }
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/api/v1/users":
		_ = json.NewDecoder(r.Body).Decode(&in)
		if f.firstTry("sign-up " + in.Username) {
			f.refuseREST(w)
			return
		}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"user":{"id":%q,"username":%q},"token":%q}`, in.Username, in.Username, in.Username)
	case r.Method == http.MethodPost && r.URL.Path == "/api/v1/rooms":
		_ = json.NewDecoder(r.Body).Decode(&in)
		if f.firstTry("room " + in.Name) {
			f.refuseREST(w)
			return
		}
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
			if f.firstTry(fmt.Sprintf("join %p %s", c, in.Room)) {
				f.refuseFrame(c, "join")
				continue
			}
			f.mu.Lock()
			f.rooms[in.Room] = append(f.rooms[in.Room], c)
			last := f.seqs[in.Room]
			f.mu.Unlock()
			c.write(map[string]any{"type": "joined", "room": in.Room, "last_seq": last})
		case "send":
			if f.firstTry("send " + in.ClientID) {
				f.refuseFrame(c, in.ClientID)
				continue
			}
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
