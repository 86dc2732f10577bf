package httpserve

import (
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"
)

// Serve answers until its context ends, then returns nil and the listener
// is closed.
func TestServeUntilTheContextEnds(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, srv) }()
	resp, err := http.Get("http://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok" {
		t.Fatalf("got %q, want ok", body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve returned %v after its context ended, want nil", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("the listener still accepts after Serve returned")
	}
}

// A listener that fails ends Serve with its error.
func TestServeReturnsAFailedListenersError(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if err := Serve(t.Context(), ln, &http.Server{}); err == nil {
		t.Fatal("Serve on a closed listener returned nil")
	}
}

// A server served without timeouts gets them all, so that no helper's
// listener lets a client hold a connection for ever; one it sets is kept.
func TestServeSetsTheTimeoutsAServerLeavesZero(t *testing.T) {
	t.Parallel()
	srv := &http.Server{ReadHeaderTimeout: 3 * time.Second}
	withTimeouts(srv)
	got := []time.Duration{srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout}
	want := []time.Duration{3 * time.Second, readTimeout, writeTimeout, idleTimeout}
	if !slices.Equal(got, want) {
		t.Errorf("got header, read, write and idle timeouts %v, want %v", got, want)
	}
}
