package app

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"
)

// healthcheck asks this container's own server whether it is ready: GET
// /readyz on the port of PARLEY_ADDR. It is `parley healthcheck`, for
// container runtimes whose health checks run a command, since the image
// has no shell or curl to run one with.
func healthcheck(ctx context.Context, getenv func(string) string) error {
	addr := getenv("PARLEY_ADDR")
	if addr == "" {
		addr = defaultAddr
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return fmt.Errorf("PARLEY_ADDR: want host:port or :port, got %q", addr)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort("127.0.0.1", port)+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/readyz answered %s", resp.Status)
	}
	return nil
}
