package systemtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The attacks of an adversarial client, each run against the built server
// on PostgreSQL while two other users chat in a room of their own. Each
// attack must fail to cost those users their service (no disconnection, no
// lost message) and must fail to hold what it grabs; the figures (what the
// attack got, the control pair's delivery latency, the server's memory and
// goroutines) are logged, so a run shows them side by side. Latencies are
// reported, not asserted: this machine's other work moves them.
func TestAttacksDoNotCostOtherUsersTheirService(t *testing.T) {
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			env := envFor(t, "postgres")
			for k, v := range abuseEnv {
				env[k] = v
			}
			p := startProcess(t, env)
			ctl := startControl(t, p.testServer)
			outcome := a.run(t, p.testServer)
			lat := ctl.stop()
			t.Logf("%-22s %s | control: %s | rss %.0f MiB, goroutines %.0f",
				a.name, outcome, lat, rssMiB(p), p.metric("go_goroutines"))
		})
	}
}

// abuseEnv scales the server's timeouts down so that a test can watch them
// act; the defaults are in docs/operations.md.
var abuseEnv = map[string]string{
	"PARLEY_READ_HEADER_TIMEOUT": "1s",
	"PARLEY_READ_TIMEOUT":        "2s",
	"PARLEY_IDLE_TIMEOUT":        "2s",
}

// bodyWait and idleWait are how long the tests give the server to cut a
// dawdling body and an idle keep-alive: the scaled timeouts plus slack.
const (
	bodyWait = 5 * time.Second
	idleWait = 5 * time.Second
)

type attack struct {
	name string
	run  func(t *testing.T, s *testServer) (outcome string)
}

var attacks = []attack{
	{"slow request bodies", attackSlowBodies},
	{"idle keep-alives", attackIdleKeepAlives},
	{"one user's sockets", attackUserSockets},
	{"typing flood", attackTyping},
	{"frames back to back", attackBackToBack},
	{"joins of many rooms", attackManyJoins},
	{"password guessing", attackPasswords},
	{"room creation flood", attackRoomFlood},
	{"history readers", attackHistoryReaders},
}

// attackSlowBodies opens 100 requests that announce a 64 KiB body and send
// it a byte a second.
func attackSlowBodies(t *testing.T, s *testServer) string {
	const n = 100
	held := dribble(t, s, n, bodyWait, func(c net.Conn) error {
		_, err := fmt.Fprintf(c, "POST /api/v1/sessions HTTP/1.1\r\nHost: parley\r\nContent-Type: application/json\r\nContent-Length: 65536\r\n\r\n")
		return err
	})
	if held > 0 {
		t.Errorf("%d of %d dribbled bodies still held after %v, want none", held, n, bodyWait)
	}
	return fmt.Sprintf("%d/%d dribbled bodies held after %v", held, n, bodyWait)
}

// attackIdleKeepAlives leaves 100 keep-alive connections idle after one
// request each.
func attackIdleKeepAlives(t *testing.T, s *testServer) string {
	const n = 100
	conns := dialN(t, s, n, func(c net.Conn) error {
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: parley\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil {
			resp.Body.Close()
		}
		return err
	})
	held := stillOpen(conns, idleWait)
	if held > 0 {
		t.Errorf("%d of %d idle keep-alives still open after %v, want none", held, n, idleWait)
	}
	return fmt.Sprintf("%d/%d idle keep-alives held after %v", held, n, idleWait)
}

// attackUserSockets opens up to 3,000 sockets as one user.
func attackUserSockets(t *testing.T, s *testServer) string {
	const n = 3000
	token := s.mustSignUp("sockets").Token
	var accepted, refused atomic.Int64
	var mu sync.Mutex
	var open []*wsConn
	parallel(n, 50, func(int) {
		c, resp, err := openWS(s.wsURL(), token, func(frame) {})
		switch {
		case err == nil:
			accepted.Add(1)
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
		case resp != nil && resp.StatusCode == http.StatusTooManyRequests:
			refused.Add(1)
		}
	})
	for _, c := range open {
		c.close()
	}
	if accepted.Load() > 100 {
		t.Errorf("one user held %d sockets, want a cap well under 100", accepted.Load())
	}
	return fmt.Sprintf("%d/%d sockets accepted, %d refused 429", accepted.Load(), n, refused.Load())
}

// attackTyping has one user type into the control room from many sockets,
// 19 times a second each, as fast as each socket's own limit allows.
func attackTyping(t *testing.T, s *testServer) string {
	const sockets, perSecond, lasting = 150, 19, 3 * time.Second
	token := s.mustSignUp("typist").Token
	var conns []*wsConn
	for range sockets {
		c, _, err := openWS(s.wsURL(), token, func(frame) {})
		if err != nil {
			break // the per-user cap
		}
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	room := controlRoom(s)
	for _, c := range conns {
		c.write(map[string]any{"type": "join", "room": room})
	}
	// The slow member reads a frame every 10 ms, like a phone on a poor link.
	slow := s.mustSignUp("slowmember")
	var slowGot atomic.Int64
	member, _, err := openWS(s.wsURL(), slow.Token, func(f frame) {
		if f.Type == "typing" {
			slowGot.Add(1)
		}
		time.Sleep(10 * time.Millisecond)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer member.close()
	member.write(map[string]any{"type": "join", "room": room})
	ctx, cancel := context.WithTimeout(context.Background(), lasting)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			tick := time.NewTicker(time.Second / perSecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					c.write(map[string]any{"type": "typing", "room": room})
				}
			}
		})
	}
	wg.Wait()
	time.Sleep(500 * time.Millisecond) // let what was sent arrive
	closed := "open"
	select {
	case <-member.closed:
		closed = fmt.Sprintf("closed %d", member.code())
		t.Errorf("the slow member was closed %d by another user's typing", member.code())
	default:
	}
	return fmt.Sprintf("%d sockets typing %d/s for %v: slow member %s, got %d typing frames",
		len(conns), perSecond, lasting, closed, slowGot.Load())
}

// attackBackToBack sends 1,000 leave frames without waiting, from a client
// that reads everything.
func attackBackToBack(t *testing.T, s *testServer) string {
	const n = 1000
	token := s.mustSignUp("hasty").Token
	var answers atomic.Int64
	c, _, err := openWS(s.wsURL(), token, func(f frame) {
		if f.Type == "error" || f.Type == "left" {
			answers.Add(1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	for range n {
		if c.write(map[string]any{"type": "leave", "room": "nowhere"}) != nil {
			break
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for answers.Load() < n && time.Now().Before(deadline) {
		select {
		case <-c.closed:
			deadline = time.Now()
		case <-time.After(20 * time.Millisecond):
		}
	}
	state := "open"
	select {
	case <-c.closed:
		state = fmt.Sprintf("closed %d", c.code())
		t.Errorf("a client that reads everything was closed %d after %d answers", c.code(), answers.Load())
	default:
	}
	return fmt.Sprintf("%d/%d answered, connection %s", answers.Load(), n, state)
}

// attackManyJoins joins 100 rooms from one socket at once, as a client
// reconnecting with many rooms open does, and then paces itself as
// docs/protocol.md asks: after a refusal it sends nothing until the wait
// the server asked for is over, and then one join every 50 ms.
func attackManyJoins(t *testing.T, s *testServer) string {
	const n, pace = 100, 50 * time.Millisecond
	token := s.mustSignUp("joiner").Token
	rooms := make([]string, n)
	for i := range rooms {
		owner := s.mustSignUp(fmt.Sprintf("owner%d", i))
		rooms[i] = s.mustCreateRoom(owner.Token, fmt.Sprintf("many-%d", i)).ID
	}
	frames := make(chan frame, 4*n)
	c, _, err := openWS(s.wsURL(), token, func(f frame) { frames <- f })
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	join := func(room string) { c.write(map[string]any{"type": "join", "room": room}) }
	inFlight := slices.Clone(rooms) // in the order sent: answers come in order
	for _, room := range rooms {
		join(room)
	}
	var refused []string // to send again, once the wait is over
	var resend <-chan time.Time
	joined, refusals := 0, 0
	deadline := time.After(30 * time.Second)
	for joined < n {
		select {
		case f := <-frames:
			switch {
			case f.Type == "joined":
				joined++
				inFlight = slices.DeleteFunc(inFlight, func(r string) bool { return r == f.Room })
			case f.Type == "error" && f.Code == "rate_limited" && len(inFlight) > 0:
				refusals++
				if f.RetryAfter <= 0 && refusals == 1 {
					t.Errorf("a join refused rate_limited says nothing of when to retry: %+v", f)
				}
				refused, inFlight = append(refused, inFlight[0]), inFlight[1:]
				resend = time.After(time.Duration(f.RetryAfter * float64(time.Second)))
			case f.Type == "error":
				t.Fatalf("join answered %+v", f)
			}
		case <-resend:
			resend = nil
			if len(refused) > 0 {
				join(refused[0])
				inFlight, refused = append(inFlight, refused[0]), refused[1:]
				resend = time.After(pace)
			}
		case <-c.closed:
			t.Errorf("joining %d rooms: closed %d after %d joined", n, c.code(), joined)
			return fmt.Sprintf("closed %d after %d joined", c.code(), joined)
		case <-deadline:
			t.Fatalf("joined %d of %d rooms in 30 s", joined, n)
		}
	}
	return fmt.Sprintf("%d rooms joined from one socket, %d joins refused with a wait and sent again", joined, refusals)
}

// attackPasswords tries 100 wrong passwords for one account at once.
func attackPasswords(t *testing.T, s *testServer) string {
	const n = 100
	s.mustSignUp("victim")
	codes := make([]int, n)
	parallel(n, 10, func(i int) {
		codes[i] = s.quietCall("POST", "/api/v1/sessions", "", `{"username":"victim","password":"guess-`+strconv.Itoa(i)+`"}`)
	})
	wrong, throttled := count(codes, http.StatusUnauthorized), count(codes, http.StatusTooManyRequests)
	if throttled == 0 {
		t.Errorf("%d wrong passwords in a burst: none throttled", n)
	}
	return fmt.Sprintf("%d wrong passwords: %d answered 401, %d throttled 429", n, wrong, throttled)
}

// attackRoomFlood has one user create rooms as fast as it can for 3 s.
func attackRoomFlood(t *testing.T, s *testServer) string {
	token := s.mustSignUp("roomer").Token
	var created, throttled atomic.Int64
	stop := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; time.Now().Before(stop); i++ {
				switch s.quietCall("POST", "/api/v1/rooms", token, fmt.Sprintf(`{"name":"flood-%d-%d"}`, w, i)) {
				case http.StatusCreated:
					created.Add(1)
				case http.StatusTooManyRequests:
					throttled.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if created.Load() > 500 {
		t.Errorf("one user created %d rooms in 3 s", created.Load())
	}
	return fmt.Sprintf("one user in 3 s: %d rooms created, %d throttled", created.Load(), throttled.Load())
}

// attackHistoryReaders has 16 readers fetch 500-message pages of the
// control room for 3 s.
func attackHistoryReaders(t *testing.T, s *testServer) string {
	token := s.mustSignUp("reader").Token
	room := controlRoom(s)
	var ok, throttled atomic.Int64
	stop := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for time.Now().Before(stop) {
				switch s.quietCall("GET", "/api/v1/rooms/"+room+"/messages?limit=500", token, "") {
				case http.StatusOK:
					ok.Add(1)
				case http.StatusTooManyRequests:
					throttled.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if throttled.Load() == 0 {
		t.Errorf("16 history readers: none throttled")
	}
	return fmt.Sprintf("16 readers in 3 s: %d pages read, %d throttled", ok.Load(), throttled.Load())
}

// control is two users chatting in a room of their own while an attack
// runs: one sends a message every 125 ms (under the per-user send limit), the other times each delivery.
type control struct {
	t                *testing.T
	room             string
	sender, receiver *wsConn
	cancel           context.CancelFunc
	done             chan struct{}

	mu      sync.Mutex
	sentAt  map[string]time.Time
	latency []time.Duration
}

var controlRooms sync.Map // *testServer → room id

func controlRoom(s *testServer) string {
	room, _ := controlRooms.Load(s)
	return room.(string)
}

func startControl(t *testing.T, s *testServer) *control {
	a, b := s.mustSignUp("control-a"), s.mustSignUp("control-b")
	room := s.mustCreateRoom(a.Token, "control").ID
	controlRooms.Store(s, room)
	ctx, cancel := context.WithCancel(context.Background())
	c := &control{t: t, room: room, cancel: cancel, done: make(chan struct{}), sentAt: make(map[string]time.Time)}
	joined := make(chan struct{}, 2)
	var err error
	c.receiver, _, err = openWS(s.wsURL(), b.Token, func(f frame) {
		switch f.Type {
		case "joined":
			joined <- struct{}{}
		case "message":
			c.mu.Lock()
			if at, ok := c.sentAt[f.ClientID]; ok {
				c.latency = append(c.latency, time.Since(at))
				delete(c.sentAt, f.ClientID)
			}
			c.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	c.sender, _, err = openWS(s.wsURL(), a.Token, func(f frame) {
		if f.Type == "joined" {
			joined <- struct{}{}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, ws := range []*wsConn{c.receiver, c.sender} {
		ws.write(map[string]any{"type": "join", "room": room})
	}
	for range 2 {
		select {
		case <-joined:
		case <-time.After(10 * time.Second):
			t.Fatal("the control pair did not join")
		}
	}
	go func() {
		defer close(c.done)
		tick := time.NewTicker(125 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			id := "c" + strconv.Itoa(i)
			c.mu.Lock()
			c.sentAt[id] = time.Now()
			c.mu.Unlock()
			c.sender.write(map[string]any{"type": "send", "room": room, "client_id": id, "body": "still here"})
		}
	}()
	return c
}

// stop ends the control chat, fails the test if the attack cost it its
// connections or messages, and describes the delivery latencies it saw.
func (c *control) stop() string {
	c.cancel()
	<-c.done
	time.Sleep(time.Second) // the last deliveries
	for who, ws := range map[string]*wsConn{"sender": c.sender, "receiver": c.receiver} {
		select {
		case <-ws.closed:
			c.t.Errorf("the control %s was disconnected (code %d)", who, ws.code())
		default:
		}
		ws.close()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.sentAt) > 0 {
		c.t.Errorf("%d control messages were not delivered", len(c.sentAt))
	}
	if len(c.latency) == 0 {
		return "no deliveries"
	}
	slices.Sort(c.latency)
	q := func(p float64) time.Duration {
		return c.latency[int(p*float64(len(c.latency)-1))].Round(100 * time.Microsecond)
	}
	return fmt.Sprintf("%d delivered, p50 %v p99 %v max %v", len(c.latency), q(0.5), q(0.99), q(1))
}

// dribble opens n connections that each start a request with begin and
// then send a byte a second, and returns how many the server still holds
// after wait.
func dribble(t *testing.T, s *testServer, n int, wait time.Duration, begin func(net.Conn) error) int {
	conns := dialN(t, s, n, begin)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, c := range conns {
		go func() {
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					if _, err := c.Write([]byte("x")); err != nil {
						return
					}
				}
			}
		}()
	}
	return stillOpen(conns, wait)
}

// dialN opens n connections to the server's public listener, each started
// with begin, closed when the test ends.
func dialN(t *testing.T, s *testServer, n int, begin func(net.Conn) error) []net.Conn {
	addr := strings.TrimPrefix(s.base, "http://")
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := begin(c); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	return conns
}

// stillOpen waits until wait has passed and counts the connections the
// server has not closed: a read that ends in EOF or a reset is closed, one
// that only times out is open.
func stillOpen(conns []net.Conn, wait time.Duration) int {
	deadline := time.Now().Add(wait)
	var open atomic.Int64
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			c.SetReadDeadline(deadline)
			buf := make([]byte, 4096)
			for {
				_, err := c.Read(buf)
				if err == nil {
					continue // an error answer; the close follows
				}
				if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
					open.Add(1)
				}
				return
			}
		})
	}
	wg.Wait()
	return int(open.Load())
}

// quietCall makes a request and returns its status, 0 when it failed.
func (s *testServer) quietCall(method, path, token, body string) int {
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if err != nil {
		return 0
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// parallel runs f(0..n-1) on at most width goroutines.
func parallel(n, width int, f func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range width {
		wg.Go(func() {
			for i := range next {
				f(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

func count(codes []int, want int) int {
	n := 0
	for _, c := range codes {
		if c == want {
			n++
		}
	}
	return n
}

// rssMiB is the process's resident memory, from /proc.
func rssMiB(p *process) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return -1
}
