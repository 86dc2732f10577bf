package testenv

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

func TestClosedAddrRefusesConnections(t *testing.T) {
	t.Parallel()
	c, err := net.DialTimeout("tcp", ClosedAddr(t), 5*time.Second)
	if err == nil {
		c.Close()
		t.Fatal("got a connection, want it refused")
	}
}

func TestBlackHoleAcceptsAndNeverAnswers(t *testing.T) {
	t.Parallel()
	c, err := net.DialTimeout("tcp", StartBlackHole(t), 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	c.Write([]byte("hello?"))
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("got %v, want the read to time out", err)
	}
}
