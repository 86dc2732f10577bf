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
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", ":8099", "listen address")
	keep := flag.Int("keep", 1000, "messages kept, newest first")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	if err := serve(ctx, *addr, *keep, log); err != nil {
		fmt.Fprintln(os.Stderr, "slackrecv:", err)
		os.Exit(1)
	}
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
