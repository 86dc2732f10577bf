package app

import (
	"context"
	"fmt"
	"io"

	"github.com/parleychat/parley/telemetry"
)

// Run is the whole server: it builds everything from the environment, serves
// until ctx ends, then drains and shuts down within PARLEY_DRAIN_TIMEOUT.
// version names the build in logs, metrics and error reports.
func Run(ctx context.Context, version string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 1 && args[0] == "healthcheck" {
		return healthcheck(ctx, getenv)
	}
	if len(args) > 0 {
		return fmt.Errorf("parley takes no arguments but healthcheck (got %q): configure it with environment variables, listed in README.md", args)
	}
	cfg, err := loadConfig(getenv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	tel, err := telemetry.Setup(ctx, telemetry.Config{
		Service: "parley", Version: version, Environment: cfg.Environment,
		LogLevel: cfg.LogLevel, Stdout: stdout, Getenv: getenv,
	})
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	tel.Logger.Info("starting parley", append(cfg.logAttrs(), "version", version)...)

	s := newServer(cfg, tel, stderr)
	err = s.build(ctx)
	if err == nil {
		err = s.start()
	}
	if err == nil {
		err = s.wait(ctx)
	}
	s.shutdown(ctx)
	return err
}
