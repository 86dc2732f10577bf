package testenv

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

func TestProxyLatencyDelaysBothWaysOnOpenAndNewConnections(t *testing.T) {
	t.Parallel()
	const d = 50 * time.Millisecond
	p := StartProxy(t, startEcho(t))
	open := dialProxy(t, p)
	roundTrip(t, open) // the connection is forwarding before the latency is set

	p.SetLatency(d)

	for _, tc := range []struct {
		name string
		conn net.Conn
	}{
		{"a connection open before", open},
		{"a connection opened after", dialProxy(t, p)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := roundTrip(t, tc.conn); got < 2*d {
				t.Errorf("round trip with latency %v: got %v, want at least %v", d, got, 2*d)
			}
		})
	}

	t.Run("bytes keep their order", func(t *testing.T) {
		c := dialProxy(t, p)
		var sent []byte
		for i := range 200 {
			chunk := []byte{byte(i), byte(i >> 8)}
			if _, err := c.Write(chunk); err != nil {
				t.Fatalf("write: %v", err)
			}
			sent = append(sent, chunk...)
		}
		got := make([]byte, len(sent))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("read the echo: %v", err)
		}
		if !bytes.Equal(got, sent) {
			t.Errorf("got echo %v, want %v", got, sent)
		}
	})
}

func TestProxyLatencyOfZeroRemovesIt(t *testing.T) {
	t.Parallel()
	p := StartProxy(t, startEcho(t))
	open := dialProxy(t, p)
	roundTrip(t, open)

	// Under an hour of latency no round trip would finish before the
	// connections' deadline, so finishing shows the latency is gone without
	// asserting how fast the round trip must be.
	p.SetLatency(time.Hour)
	p.SetLatency(0)

	roundTrip(t, open)
	roundTrip(t, dialProxy(t, p))
}

func TestProxyCutDropsConnectionsUntilRestore(t *testing.T) {
	t.Parallel()
	p := StartProxy(t, startEcho(t))
	open := dialProxy(t, p)
	roundTrip(t, open)

	p.Cut()

	wantDropped(t, "a connection open before Cut", open)
	wantDropped(t, "a connection opened after Cut", dialProxy(t, p))

	p.Restore()

	roundTrip(t, dialProxy(t, p))
}

func TestProxyCutDropsConnectionsHeldBackByLatency(t *testing.T) {
	t.Parallel()
	p := StartProxy(t, startEcho(t))
	c := dialProxy(t, p)
	p.SetLatency(time.Hour)
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatalf("write: %v", err)
	}

	p.Cut()

	wantDropped(t, "a connection with a chunk held back", c)
}

// startEcho serves connections that send back whatever they receive, until
// the test ends, and returns its address.
func startEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		conns  = make(map[net.Conn]struct{})
		closed bool
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if closed {
				c.Close()
			}
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Go(func() {
				io.Copy(c, c)
				c.Close()
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		closed = true
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// dialProxy connects to p, closed when the test ends. Its deadline only keeps
// a broken proxy from hanging the test: no test here asserts an upper bound.
func dialProxy(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr(), 10*time.Second)
	if err != nil {
		t.Fatalf("dial the proxy: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// roundTrip sends a message through c, waits for its echo and returns how
// long that took.
func roundTrip(t *testing.T, c net.Conn) time.Duration {
	t.Helper()
	start := time.Now()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read the echo: %v", err)
	}
	if string(got) != "ping" {
		t.Fatalf("got echo %q, want %q", got, "ping")
	}
	return time.Since(start)
}

// wantDropped checks that the proxy closed c: reading it ends with an
// error other than its deadline.
func wantDropped(t *testing.T, what string, c net.Conn) {
	t.Helper()
	n, err := c.Read(make([]byte, 16))
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("%s: got no answer until the deadline, want the connection dropped", what)
	} else if err == nil {
		t.Errorf("%s: got %d bytes, want the connection dropped", what, n)
	}
}
