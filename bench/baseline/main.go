// Command baseline is the bare hub Parley is measured against (go run
// ./bench): a minimal gorilla/websocket chat server that speaks Parley's
// frames and answers the REST calls the load generator makes while it sets
// up, and nothing else. It is a yardstick, not a server: no real
// authentication (a token is the user's id), no store, no history (a join
// with since replays nothing), no idempotent resends, no limits, no
// telemetry, and typing frames are ignored.
//
//	baseline -addr 127.0.0.1:8081
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("baseline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8081", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: newHub().routes(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 90 * time.Second}
	go func() { <-ctx.Done(); srv.Close() }() // closes the sockets too: nothing to drain
	fmt.Fprintf(stderr, "baseline: listening on %s\n", ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// hub is every user and room, in memory.
type hub struct {
	mu    sync.Mutex
	users map[string]user // by username
	ids   map[string]user // by id, which is also the token
	rooms map[string]*room
	next  int // the last id handed out
}

type user struct {
	ID       string `json:"id"`
	Username string `json:"username"`
}

type room struct {
	mu      sync.Mutex
	seq     int64
	members map[*conn]bool
}

func newHub() *hub {
	return &hub{users: map[string]user{}, ids: map[string]user{}, rooms: map[string]*room{}}
}

func (h *hub) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { reply(w, 200, map[string]string{"status": "ok"}) })
	mux.HandleFunc("POST /api/v1/users", h.session(true))
	mux.HandleFunc("POST /api/v1/sessions", h.session(false))
	mux.HandleFunc("POST /api/v1/rooms", h.createRoom)
	mux.HandleFunc("GET /ws", h.serveWS)
	return mux
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, code string) {
	reply(w, status, map[string]any{"error": map[string]string{"code": code, "message": code}})
}

func (h *hub) id(prefix string) string { h.next++; return prefix + strconv.Itoa(h.next) }

// session signs a user up (create) or logs them in; no password is kept.
func (h *hub) session(create bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Username string }
		if json.NewDecoder(r.Body).Decode(&in) != nil || in.Username == "" {
			fail(w, 400, "bad_request")
			return
		}
		h.mu.Lock()
		u, known := h.users[in.Username]
		if create && !known {
			u = user{ID: h.id("u"), Username: in.Username}
			h.users[u.Username], h.ids[u.ID] = u, u
		}
		h.mu.Unlock()
		switch {
		case create && known:
			fail(w, 409, "conflict")
		case !known && !create:
			fail(w, 401, "unauthorized")
		default:
			reply(w, 201, map[string]any{"user": u, "token": u.ID, "expires_at": time.Now().Add(24 * time.Hour)})
		}
	}
}

func (h *hub) createRoom(w http.ResponseWriter, r *http.Request) {
	var in struct{ Name string }
	if json.NewDecoder(r.Body).Decode(&in) != nil || in.Name == "" {
		fail(w, 400, "bad_request")
		return
	}
	h.mu.Lock()
	id := h.id("r")
	h.rooms[id] = &room{members: map[*conn]bool{}}
	h.mu.Unlock()
	reply(w, 201, map[string]any{"room": map[string]any{"id": id, "name": in.Name, "created_at": time.Now(), "last_seq": 0}})
}

// conn is one socket: a reader (the handler's goroutine) and a writer
// draining queue. A member whose queue is full is disconnected.
type conn struct {
	ws    *websocket.Conn
	user  user
	queue chan []byte
	done  chan struct{}
	once  sync.Once
}

func (c *conn) offer(frame []byte) {
	select {
	case c.queue <- frame:
	default:
		c.close()
	}
}

func (c *conn) close() { c.once.Do(func() { close(c.done); c.ws.Close() }) }

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func (h *hub) serveWS(w http.ResponseWriter, r *http.Request) {
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	for _, q := range []string{"ticket", "token"} {
		if v := r.URL.Query().Get(q); token == "" && v != "" {
			token = v
		}
	}
	h.mu.Lock()
	u, ok := h.ids[token]
	h.mu.Unlock()
	if !ok {
		fail(w, 401, "unauthorized")
		return
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &conn{ws: ws, user: u, queue: make(chan []byte, 256), done: make(chan struct{})}
	go c.write()
	joined := map[string]*room{}
	defer func() {
		for _, rm := range joined {
			rm.remove(c)
		}
		c.close()
	}()
	ws.SetReadLimit(64 << 10)
	_ = ws.SetReadDeadline(time.Now().Add(pongWait))
	ws.SetPongHandler(func(string) error { return ws.SetReadDeadline(time.Now().Add(pongWait)) })
	for {
		_, raw, err := ws.ReadMessage()
		if err != nil {
			return
		}
		_ = ws.SetReadDeadline(time.Now().Add(pongWait))
		var f struct {
			Type, Room, Body string
			ClientID         string `json:"client_id"`
		}
		_ = json.Unmarshal(raw, &f) // a frame that is not JSON has no type: bad_request below
		h.mu.Lock()
		rm := h.rooms[f.Room]
		h.mu.Unlock()
		switch {
		case f.Type == "typing": // not fanned out: the shapes send none
		case f.Type == "send" && rm != nil && f.ClientID != "" && f.Body != "":
			rm.send(c, f.Room, f.ClientID, f.Body)
		case f.Type == "join" && rm != nil:
			rm.mu.Lock()
			rm.members[c] = true
			c.offer(encode(map[string]any{"type": "joined", "room": f.Room, "last_seq": rm.seq, "members": []user{}}))
			rm.mu.Unlock()
			joined[f.Room] = rm
		case f.Type == "leave" && rm != nil:
			rm.remove(c)
			delete(joined, f.Room)
			c.offer(encode(map[string]string{"type": "left", "room": f.Room}))
		default:
			code, ref := "bad_request", f.Type
			if f.Type == "send" {
				ref = f.ClientID
			}
			if rm == nil && (f.Type == "send" || f.Type == "join" || f.Type == "leave") {
				code = "not_found"
			}
			c.offer(encode(map[string]string{"type": "error", "code": code, "message": code, "ref": ref}))
		}
	}
}

func (rm *room) remove(c *conn) {
	rm.mu.Lock()
	delete(rm.members, c)
	rm.mu.Unlock()
}

// send numbers a message and offers it to every member under the room's
// lock, so that each gets the room's messages in seq order; then acks it.
func (rm *room) send(from *conn, roomID, clientID, body string) {
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	rm.mu.Lock()
	rm.seq++
	seq := rm.seq
	id := roomID + "-" + strconv.FormatInt(seq, 10)
	msg := encode(map[string]any{"type": "message", "id": id, "room": roomID, "seq": seq, "client_id": clientID, "user": from.user, "body": body, "ts": ts})
	for m := range rm.members {
		m.offer(msg)
	}
	rm.mu.Unlock()
	from.offer(encode(map[string]any{"type": "ack", "room": roomID, "client_id": clientID, "id": id, "seq": seq, "ts": ts}))
}

func encode(v any) []byte {
	raw, _ := json.Marshal(v) // maps of strings and numbers always encode
	return raw
}

const (
	writeWait  = 10 * time.Second
	pingPeriod = 30 * time.Second
	pongWait   = 2 * pingPeriod
)

// write sends queued frames and a ping every pingPeriod until the
// connection closes.
func (c *conn) write() {
	ping := time.NewTicker(pingPeriod)
	defer ping.Stop()
	for {
		select {
		case f := <-c.queue:
			_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
			if c.ws.WriteMessage(websocket.TextMessage, f) != nil {
				c.close()
				return
			}
		case <-ping.C:
			if c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)) != nil {
				c.close()
				return
			}
		case <-c.done:
			return
		}
	}
}
