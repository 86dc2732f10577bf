// Command slackrecv stands in for Slack on a laptop or in tests: it accepts
// Slack incoming-webhook posts (what Alertmanager's slack_configs send),
// keeps the latest ones in memory, and shows them on a page (GET /) and as
// JSON (GET /messages). make observe uses it when no real webhook is set.
//
//	slackrecv -addr :8099 -keep 1000 -hook parley-pages=#parley-pages -hook parley-tickets=#parley-tickets
//
// Like Slack, it serves only the webhooks it was given, each bound to one
// channel: http://host:8099/hooks/parley-pages posts to #parley-pages
// whatever channel the payload names, and a post to a hook it does not
// serve is refused with 404 no_service. So a receiver wired to the wrong
// webhook lands in the wrong channel here as it would in Slack.
//
// Where it differs from Slack: hook ids are whatever -hook names (Slack's
// are /services/T.../B.../secret), nothing is rate limited, and only the
// fields Alertmanager sends are parsed (the raw body is kept).
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
	"strings"
	"syscall"
	"time"

	"github.com/parleychat/parley/internal/httpserve"
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
	hooks := map[string]string{}
	fs.Func("hook", "a webhook to serve and the channel it posts to, `id=#channel` (repeat for each)", func(v string) error {
		id, channel, ok := strings.Cut(v, "=")
		switch {
		case !ok || id == "" || channel == "":
			return fmt.Errorf("%q is not id=#channel", v)
		case strings.ContainsAny(id, " ?#"):
			return fmt.Errorf("hook id %q has a space, ? or #", id)
		case hooks[id] != "":
			return fmt.Errorf("hook %s given twice", id)
		}
		hooks[id] = channel
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if len(hooks) == 0 {
		return errors.New("-hook: give at least one webhook to serve, e.g. -hook parley-pages=#parley-pages")
	}
	return serve(ctx, *addr, *keep, hooks, slog.New(slog.NewJSONHandler(stdout, nil)))
}

// serve runs the receiver on addr until ctx ends.
func serve(ctx context.Context, addr string, keep int, hooks map[string]string, log *slog.Logger) error {
	if keep < 1 {
		return errors.New("-keep must be at least 1")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: newInbox(keep, hooks).handler(), ReadHeaderTimeout: 10 * time.Second}
	log.Info("listening", "addr", ln.Addr().String(), "hooks", hooks)
	return httpserve.Serve(ctx, ln, srv)
}
