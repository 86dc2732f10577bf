//go:build !race

// The race detector changes what every allocation and goroutine costs, so
// this test is built only without it; `make test` runs it in a run of its
// own.

package app

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// idleConnBudget bounds the live memory, heap and goroutine stacks after a
// collection, that the server holds for one idle WebSocket connection (its
// own user, joined to a room of a hundred, every feature on). It guards the
// promise of at most 10 KiB of RSS per idle connection (measured by the
// side-by-side benchmark, docs/performance.md) in a form that cannot flake.
// The connection measures 5.4 to 5.8 KiB here: about 3.4 KiB of heap and
// the reader's 2 KiB stack; before the lean connection, it was 62 KiB.
// RSS is about twice the heap (the collector lets the heap double) plus
// the stacks, so the promise itself is the benchmark's to measure; the
// bound leaves room for the runtime's variation, and what breaks it is
// what would break the promise: a second goroutine per connection, a
// grown reader stack, or a buffer held for the connection's life. The figure includes the test's
// own client sockets, about 150 B each.
const idleConnBudget = 8 << 10

// The idle shape: a user per connection, in rooms of idleRoomSize.
const (
	idleConns    = 1000
	idleRooms    = 10
	idleRoomSize = idleConns / idleRooms
	// idleWorkers bounds the sign-ups and dials in flight at once.
	idleWorkers = 32
)

var idleProfiles = flag.String("idlememory.profiles", "",
	"directory to write TestIdleMemory's heap profiles and goroutine dumps to, taken at its two measurements"+
		" (compare them with go tool pprof -diff_base)")

// A thousand idle connections, each its own user joined to a room of a
// hundred, cost the server less than idleConnBudget each in live heap and
// stacks, and leave no goroutine behind once they close.
//
// The clients live in this process, so they are made to cost next to
// nothing: each is a bare socket that did its handshake and join by hand
// and is no longer read, with no goroutine or buffer of its own; the
// presence frames that follow its join wait in the kernel. The test is not
// parallel: it measures the whole process, which the other tests of the
// package would disturb.
func TestIdleMemory(t *testing.T) {
	if *idleProfiles != "" {
		// Finer than the default sampling, which sees few of a
		// connection's small allocations; set before the connections
		// allocate.
		runtime.MemProfileRate = 512
	}
	public, admin := startServer(t, map[string]string{
		"PARLEY_LIMIT_SIGNUP_PER_ADDR": "1000/s,2000",
		"PARLEY_LIMIT_ROOMS_PER_USER":  "100/s,100",
		"PARLEY_LIMIT_ROOMS_PER_ADDR":  "100/s,100",
	})
	base := "http://" + public
	start := time.Now()
	tokens := signUpMany(t, base, idleConns)
	rooms := make([]string, idleRooms)
	for i := range rooms {
		rooms[i] = createRoom(t, base, tokens[0], fmt.Sprintf("idle %d", i))
	}
	metrics := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	if _, err := framesWritten(metrics, admin); err != nil { // a first scrape, so that the measured ones start nothing new
		t.Fatal(err)
	}
	http.DefaultClient.CloseIdleConnections() // their goroutines would be counted as the server's
	t.Logf("%d users and %d rooms in %v", idleConns, idleRooms, time.Since(start).Round(time.Millisecond))

	before := measureLive()
	if *idleProfiles != "" {
		writeProfiles(t, *idleProfiles, "before")
	}
	start = time.Now()
	clients := joinAll(t, public, tokens, rooms)
	// Each join tells the room's earlier members: a room of n makes n
	// joined frames and n(n-1)/2 presence frames.
	waitFramesWritten(t, metrics, admin, idleConns+idleRooms*idleRoomSize*(idleRoomSize-1)/2)
	// A connection that has written everything keeps its writer for a
	// keepalive tick or two, in case more comes; idle is once they have
	// gone, and only the readers are left (and the one keepalive loop).
	waitGoroutines(t, before.goroutines+idleConns+1)
	t.Logf("%d connections joined, their frames written, their writers gone, in %v", idleConns, time.Since(start).Round(time.Millisecond))
	after := measureLive()
	if *idleProfiles != "" {
		writeProfiles(t, *idleProfiles, "idle")
	}

	heap := float64(int64(after.heap)-int64(before.heap)) / idleConns
	stack := float64(int64(after.stack)-int64(before.stack)) / idleConns
	goroutines := float64(after.goroutines-before.goroutines) / idleConns
	t.Logf("per idle connection: %.0f B live (heap %.0f B, stacks %.0f B), %.2f goroutines; budget %d B",
		heap+stack, heap, stack, goroutines, idleConnBudget)
	if heap+stack > idleConnBudget {
		t.Errorf("got %.0f B of live heap and stacks per idle connection, want at most %d B", heap+stack, idleConnBudget)
	}

	for _, c := range clients {
		c.Close()
	}
	waitGoroutines(t, before.goroutines)
}

// liveMemory is what the process holds after a collection.
type liveMemory struct {
	heap, stack uint64 // bytes: live heap objects, goroutine stacks
	goroutines  int
}

// measureLive collects twice, so that what the first collection left for
// the second (sync.Pool's victims, objects freed by finalizers) is gone
// too, and reads what is left.
func measureLive() liveMemory {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return liveMemory{heap: ms.HeapAlloc, stack: ms.StackInuse, goroutines: runtime.NumGoroutine()}
}

// signUpMany signs up n users at base, idleWorkers at a time, and returns
// their tokens.
func signUpMany(t *testing.T, base string, n int) []string {
	t.Helper()
	tokens := make([]string, n)
	errs := inParallel(n, func(i int) (err error) {
		tokens[i], err = trySignUp(base, fmt.Sprintf("idle-%04d", i))
		return err
	})
	if errs != nil {
		t.Fatalf("sign-ups: %v", errs)
	}
	return tokens
}

// joinAll opens a connection for each token, each joined to a room in
// turn, and returns them open and unread. They are closed when the test
// ends, if it has not closed them before.
func joinAll(t *testing.T, addr string, tokens, rooms []string) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, len(tokens))
	errs := inParallel(len(tokens), func(i int) (err error) {
		conns[i], err = dialJoined(addr, tokens[i], rooms[i%len(rooms)])
		return err
	})
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	if errs != nil {
		t.Fatalf("connections: %v", errs)
	}
	return conns
}

// inParallel calls do for 0 to n-1, idleWorkers at a time, and returns how
// many failed and the first failure, or nil. Every worker has returned when
// it does.
func inParallel(n int, do func(i int) error) error {
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range idleWorkers {
		wg.Go(func() {
			for i := range next {
				errs[i] = do(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	failed := 0
	var first error
	for _, err := range errs {
		if err != nil && failed == 0 {
			first = err
		}
		if err != nil {
			failed++
		}
	}
	if failed == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d failed, the first with: %w", failed, n, first)
}

// handshakeTimeout bounds one client's upgrade and join.
const handshakeTimeout = 10 * time.Second

// dialJoined opens a WebSocket to addr as the token's user, written and
// read by hand (RFC 6455), joins room and reads until the server says it
// joined. It returns the socket with no deadline and nothing reading it.
func dialJoined(addr, token, room string) (net.Conn, error) {
	conn, err := net.DialTimeout("tcp", addr, handshakeTimeout)
	if err != nil {
		return nil, err
	}
	if err := handshakeAndJoin(conn, addr, token, room); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, conn.SetDeadline(time.Time{})
}

func handshakeAndJoin(conn net.Conn, addr, token, room string) error {
	if err := conn.SetDeadline(time.Now().Add(handshakeTimeout)); err != nil {
		return err
	}
	key := make([]byte, 16)
	rand.Read(key)
	if _, err := fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\nAuthorization: Bearer %s\r\n\r\n",
		addr, base64.StdEncoding.EncodeToString(key), token); err != nil {
		return err
	}
	// The reader may take frames past the response; it reads them all.
	r := bufio.NewReader(conn)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("upgrade: got %s, want 101", resp.Status)
	}
	join, err := json.Marshal(map[string]string{"type": "join", "room": room})
	if err != nil {
		return err
	}
	if err := writeMaskedText(conn, join); err != nil {
		return err
	}
	for {
		msg, err := readMessage(r)
		if err != nil {
			return fmt.Errorf("waiting for joined: %w", err)
		}
		var frame struct{ Type string }
		if err := json.Unmarshal(msg, &frame); err != nil {
			return fmt.Errorf("waiting for joined: %w in %q", err, msg)
		}
		switch frame.Type {
		case "joined":
			return nil
		case "error":
			return fmt.Errorf("join: %s", msg)
		}
	}
}

// writeMaskedText writes payload as one text frame, masked as every
// client's frame must be.
func writeMaskedText(w io.Writer, payload []byte) error {
	if len(payload) > 125 {
		return fmt.Errorf("a %d-byte frame: this client writes only short ones", len(payload))
	}
	frame := make([]byte, 6, 6+len(payload))
	frame[0] = 0x80 | 0x1 // FIN, text
	frame[1] = 0x80 | byte(len(payload))
	mask := frame[2:6]
	rand.Read(mask)
	for i, b := range payload {
		frame = append(frame, b^mask[i%4])
	}
	_, err := w.Write(frame)
	return err
}

// maxClientMessage bounds what readMessage accepts: a joined frame lists
// at most a room's few hundred members.
const maxClientMessage = 1 << 20

// readMessage reads the next data message, joining its fragments and
// skipping control frames.
func readMessage(r *bufio.Reader) ([]byte, error) {
	var msg []byte
	for {
		var head [2]byte
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return nil, err
		}
		if head[1]&0x80 != 0 {
			return nil, errors.New("a masked frame from the server")
		}
		n := uint64(head[1] & 0x7f)
		switch n {
		case 126:
			var ext [2]byte
			if _, err := io.ReadFull(r, ext[:]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(ext[:]))
		case 127:
			var ext [8]byte
			if _, err := io.ReadFull(r, ext[:]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(ext[:])
		}
		if n > maxClientMessage-uint64(len(msg)) {
			return nil, fmt.Errorf("a message over %d bytes", maxClientMessage)
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(r, payload); err != nil {
			return nil, err
		}
		switch opcode := head[0] & 0x0f; {
		case opcode == 0x8:
			return nil, fmt.Errorf("closed by the server: %q", payload)
		case opcode >= 0x8: // ping or pong: nothing to answer in a test this short
			continue
		}
		msg = append(msg, payload...)
		if head[0]&0x80 != 0 {
			return msg, nil
		}
	}
}

// framesWritten returns the frames the server has written to its
// WebSockets, of every kind, from its metrics at admin.
func framesWritten(client *http.Client, admin string) (int, error) {
	resp, err := client.Get("http://" + admin + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: got %s, want 200", resp.Status)
	}
	total := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "parley_ws_frames_out_total{") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("GET /metrics: %q: %w", line, err)
		}
		total += v
	}
	return int(total), sc.Err()
}

// waitFramesWritten waits until the server has written want frames, so
// that nothing is queued or being written when the memory is measured.
func waitFramesWritten(t *testing.T, client *http.Client, admin string, want int) {
	t.Helper()
	const wait = 10 * time.Second
	got := 0
	for end := time.Now().Add(wait); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		var err error
		if got, err = framesWritten(client, admin); err != nil {
			t.Fatal(err)
		}
		if got >= want {
			return
		}
	}
	t.Fatalf("%d frames written after %v, want %d", got, wait, want)
}

// waitGoroutines waits until no more than want goroutines run, and fails
// with a dump of them if that takes long: an idle connection's writer ends
// within two keepalive ticks, and the server's share of a closed
// connection within a second (its lingering close).
func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	const wait = 10 * time.Second
	got := 0
	for end := time.Now().Add(wait); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if got = runtime.NumGoroutine(); got <= want {
			return
		}
	}
	var dump strings.Builder
	pprof.Lookup("goroutine").WriteTo(&dump, 1)
	t.Fatalf("%d goroutines after %v, want at most %d:\n%s", got, wait, want, dump.String())
}

// writeProfiles writes the heap profile and a goroutine dump to dir, their
// names starting with when.
func writeProfiles(t *testing.T, dir, when string) {
	t.Helper()
	for name, write := range map[string]func(io.Writer) error{
		"heap.pprof":     pprof.WriteHeapProfile,
		"goroutines.txt": func(w io.Writer) error { return pprof.Lookup("goroutine").WriteTo(w, 1) },
	} {
		f, err := os.Create(filepath.Join(dir, when+"-"+name))
		if err != nil {
			t.Fatal(err)
		}
		err = write(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", f.Name())
	}
}
