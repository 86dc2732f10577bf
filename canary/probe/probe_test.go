package probe

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// standIn is Parley as far as a probe's steps need it: sign-up and login,
// rooms, and /ws with join, send, ack and delivery to the room's joined
// connections. It differs from the server in what these tests switch on:
// replicas named in turn per connection (one process playing several, so
// that paths can cross), and faults that drop deliveries, refuse sends or
// cut every socket.
type standIn struct {
	t        *testing.T
	replicas []string // named in turn, one per connection

	mu        sync.Mutex
	next      int
	users     map[string]string
	rooms     map[string]string // name -> id
	joined    map[*websocket.Conn]string
	traces    []string // the trace field of every send
	noDeliver bool     // acks sends but delivers nothing
	refuse    bool     // answers sends with an error frame
}

func startStandIn(t *testing.T, replicas ...string) (*standIn, string) {
	s := &standIn{t: t, replicas: replicas, users: map[string]string{}, rooms: map[string]string{}, joined: map[*websocket.Conn]string{}}
	mux := http.NewServeMux()
	session := func(w http.ResponseWriter, status int) {
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]any{"token": "t", "expires_at": time.Now().Add(time.Hour)})
	}
	mux.HandleFunc("POST /api/v1/sessions", func(w http.ResponseWriter, r *http.Request) {
		var b struct{ Username, Password string }
		json.NewDecoder(r.Body).Decode(&b)
		s.mu.Lock()
		defer s.mu.Unlock()
		if p, ok := s.users[b.Username]; !ok || p != b.Password {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		session(w, http.StatusCreated)
	})
	mux.HandleFunc("POST /api/v1/users", func(w http.ResponseWriter, r *http.Request) {
		var b struct{ Username, Password string }
		json.NewDecoder(r.Body).Decode(&b)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.users[b.Username] = b.Password
		session(w, http.StatusCreated)
	})
	mux.HandleFunc("GET /api/v1/rooms", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		var rooms []map[string]string
		for name, id := range s.rooms {
			rooms = append(rooms, map[string]string{"id": id, "name": name})
		}
		json.NewEncoder(w).Encode(map[string]any{"rooms": rooms})
	})
	mux.HandleFunc("POST /api/v1/rooms", func(w http.ResponseWriter, r *http.Request) {
		var b struct{ Name string }
		json.NewDecoder(r.Body).Decode(&b)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.rooms[b.Name] = "room-" + b.Name
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"room": map[string]string{"id": s.rooms[b.Name], "name": b.Name}})
	})
	mux.HandleFunc("GET /ws", s.ws)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { s.cut(); srv.Close() })
	return s, srv.URL
}

func (s *standIn) ws(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	replica := s.replicas[s.next%len(s.replicas)]
	s.next++
	s.mu.Unlock()
	conn, err := (&websocket.Upgrader{}).Upgrade(w, r, http.Header{"X-Parley-Replica": {replica}})
	if err != nil {
		return
	}
	var wmu sync.Mutex
	write := func(c *websocket.Conn, v any) {
		wmu.Lock()
		defer wmu.Unlock()
		c.WriteJSON(v)
	}
	defer func() {
		s.mu.Lock()
		delete(s.joined, conn)
		s.mu.Unlock()
		conn.Close()
	}()
	for {
		var f struct {
			Type, Room, Body, Trace string
			ClientID                string `json:"client_id"`
		}
		if err := conn.ReadJSON(&f); err != nil {
			return
		}
		s.mu.Lock()
		switch f.Type {
		case "join":
			s.joined[conn] = f.Room
			write(conn, map[string]any{"type": "joined", "room": f.Room, "last_seq": 0, "replica": replica})
		case "send":
			s.traces = append(s.traces, f.Trace)
			if s.refuse {
				write(conn, map[string]any{"type": "error", "code": "unavailable", "message": "store away", "ref": f.ClientID})
				break
			}
			write(conn, map[string]any{"type": "ack", "room": f.Room, "client_id": f.ClientID, "seq": 1})
			if !s.noDeliver {
				for c, room := range s.joined {
					if room == f.Room {
						// One writer lock for all: the tests' traffic is tiny.
						write(c, map[string]any{"type": "message", "room": f.Room, "client_id": f.ClientID, "body": f.Body})
					}
				}
			}
		}
		s.mu.Unlock()
	}
}

// cut closes every joined socket, as a replica that dies does.
func (s *standIn) cut() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.joined {
		c.Close()
	}
}

func (s *standIn) set(f func(s *standIn)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func newTestProber(t *testing.T, target string) *Prober {
	t.Helper()
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { tp.Shutdown(t.Context()) })
	p, err := New(Config{
		Target: target, Username: "parley-canary", Password: "canary-password", Room: "canary",
		Interval: time.Second, Timeout: 2 * time.Second, Redial: time.Hour,
		HTTP: &http.Client{}, Dialer: &websocket.Dialer{HandshakeTimeout: 2 * time.Second},
		Tracer: tp.Tracer("test"), Propagator: propagation.TraceContext{},
		Log: slog.New(slog.DiscardHandler), Now: time.Now,
		Metrics: NewMetrics(prometheus.NewRegistry(), 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.sender.close(); p.receiver.close() })
	return p
}

// Each probe's outcome, step by step, against a stand-in whose faults the
// test switches.
func TestProbeStepsAndPaths(t *testing.T) {
	t.Parallel()
	t.Run("one replica: a success on the same replica, traced", func(t *testing.T) {
		t.Parallel()
		s, url := startStandIn(t, "replica-a")
		p := newTestProber(t, url)
		r := p.Probe(t.Context())
		if r.Step != "" || r.Path != PathSame || r.Latency <= 0 {
			t.Fatalf("got %+v, want a same-replica success", r)
		}
		var traces []string
		s.set(func(s *standIn) { traces = s.traces })
		if len(r.TraceID) != 32 || len(traces) != 1 || !strings.Contains(traces[0], r.TraceID) {
			t.Errorf("probe trace %q, sends carried %q: want the probe's traceparent in its send", r.TraceID, traces)
		}
	})
	t.Run("two replicas: the path crosses", func(t *testing.T) {
		t.Parallel()
		_, url := startStandIn(t, "replica-a", "replica-b")
		if r := newTestProber(t, url).Probe(t.Context()); r.Step != "" || r.Path != PathCross {
			t.Fatalf("got %+v, want a cross-replica success", r)
		}
	})
	t.Run("acked but never delivered fails at receive", func(t *testing.T) {
		t.Parallel()
		s, url := startStandIn(t, "replica-a")
		s.set(func(s *standIn) { s.noDeliver = true })
		if r := newTestProber(t, url).Probe(t.Context()); r.Step != StepReceive || r.Path != PathSame || !errors.Is(r.Err, context.DeadlineExceeded) {
			t.Fatalf("got %+v, want a failure at receive after the timeout", r)
		}
	})
	t.Run("a refused send fails at ack", func(t *testing.T) {
		t.Parallel()
		s, url := startStandIn(t, "replica-a")
		s.set(func(s *standIn) { s.refuse = true })
		if r := newTestProber(t, url).Probe(t.Context()); r.Step != StepAck || !strings.Contains(r.Err.Error(), "unavailable") {
			t.Fatalf("got %+v, want a failure at ack naming the error frame", r)
		}
	})
	t.Run("connections cut between probes fail the next at connect, then it recovers", func(t *testing.T) {
		t.Parallel()
		s, url := startStandIn(t, "replica-a", "replica-b")
		p := newTestProber(t, url)
		if r := p.Probe(t.Context()); r.Step != "" {
			t.Fatalf("first probe: %+v", r)
		}
		s.cut()
		// The cut reaches the canary's readers asynchronously.
		for _, l := range []*link{p.sender, p.receiver} {
			select {
			case <-l.conn.Done():
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: the cut did not end the connection", l.name)
			}
		}
		r := p.Probe(t.Context())
		if r.Step != StepConnect || !errors.Is(r.Err, errDropped) || r.Path != PathCross {
			t.Fatalf("after the cut: got %+v, want a cross-replica failure at connect", r)
		}
		for range 2 { // the second link's drop, then a success
			r = p.Probe(t.Context())
		}
		if r.Step != "" {
			t.Fatalf("after redialling: got %+v, want a success", r)
		}
	})
	t.Run("nothing listening fails at login with an unknown path", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		if r := newTestProber(t, url).Probe(t.Context()); r.Step != StepLogin || r.Path != PathUnknown {
			t.Fatalf("got %+v, want a failure at login on an unknown path", r)
		}
	})
}
