// Command loadtest drives a Parley deployment with virtual chat users and
// judges it: an open model schedules messages at a rate that does not
// depend on how fast the server answers, latencies are taken from each
// message's intended send time, and every delivery is matched to its send,
// so stalls, losses, duplicates and reordering all show.
//
//	loadtest -target http://127.0.0.1:8080 -scenario loadtest/scenarios/smoke.yaml
//
// It speaks only the public protocol, with its own types (loadtest/wire).
// The exit status is 0 when every threshold holds, 1 when one breaks, and 2
// when the run could not be made.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/parleychat/parley/loadtest/driver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, driver.ErrThresholds):
		os.Exit(1)
	default:
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(2)
	}
}

// run is the whole program, for main and for tests: getenv stands in for
// the environment, which nothing below run reads.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	return driver.Drive(ctx, cfg, stdout, stderr)
}
