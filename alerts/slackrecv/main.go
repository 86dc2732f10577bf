// Command slackrecv stands in for Slack on a laptop or in tests: it accepts
// Slack incoming-webhook posts (what Alertmanager's slack_configs send),
// keeps the latest ones in memory, and shows them on a page (GET /) and as
// JSON (GET /messages). make observe uses it when no real webhook is set.
//
//	slackrecv -addr :8099 -keep 1000
//
// Alertmanager's webhook URL is then http://host:8099/hooks/anything; the
// path after /hooks/ is kept with each message, like Slack's hook ids.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "slackrecv:", err)
		os.Exit(1)
	}
}

// run is the whole program, for main and for tests: it serves until ctx
// ends, logging JSON lines to stdout. It reads no environment, and takes
// getenv to have every command's shape.
func run(ctx context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("slackrecv", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", ":8099", "listen address")
	keep := fs.Int("keep", 1000, "messages kept, newest first")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return serve(ctx, *addr, *keep, slog.New(slog.NewJSONHandler(stdout, nil)))
}

// serve runs the receiver on addr until ctx ends.
func serve(ctx context.Context, addr string, keep int, log *slog.Logger) error {
	if keep < 1 {
		return errors.New("-keep must be at least 1")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: newInbox(keep).handler(), ReadHeaderTimeout: 10 * time.Second}
	log.Info("listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdown)
	}
}
