// Command parley-canary is Parley's synthetic canary: it signs in as a
// canary user and, every few seconds, sends a message through the public
// entry point (the load balancer) on one connection and waits for it on a
// second one, as two users in a room would. It exports what it sees as
// parley_canary_* metrics for Prometheus (docs/telemetry.md), labelled by
// whether the two connections were served by the same replica.
//
//	CANARY_PASSWORD=... parley-canary -target http://lb:8080 -metrics-addr :9103
//
// It speaks only the public protocol, with its own types (canary/api).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "parley-canary:", err)
		os.Exit(2)
	}
}
