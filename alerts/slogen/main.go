// Command slogen turns alerts/slos.yaml into Prometheus recording rules,
// multi-window multi-burn-rate alerts and promtool unit tests, one file of
// each per SLO, in alerts/generated/. With -check it writes nothing and
// fails when the files on disk differ from what it would write.
//
// With -scale N it writes only the rules, every window and hold divided by
// N, for an end-to-end test that must see alerts fire and resolve in
// seconds (server/systemtest/stack_test.go uses 60: an hour's window becomes a
// minute). Such a copy goes to a directory of its own, never to
// alerts/generated.
//
// With -table it writes nothing and prints alerts/README.md's table of how
// long each SLO's page takes to fire and to resolve at the real windows.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "slogen:", err)
		os.Exit(1)
	}
}

// run is the whole program, for main and for tests. slogen reads no
// environment and is over too soon to interrupt: it takes ctx and getenv
// to have every command's shape.
func run(_ context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("slogen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	spec := fs.String("spec", "alerts/slos.yaml", "the SLO spec")
	out := fs.String("out", "alerts/generated", "where the generated files go")
	check := fs.Bool("check", false, "fail if the generated files are stale instead of writing them")
	scale := fs.Int("scale", 1, "divide every window and hold by this, for tests (writes rules only)")
	table := fs.Bool("table", false, "print the table of page timings for alerts/README.md instead of writing files")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *table {
		s, err := loadSpec(*spec)
		if err != nil {
			return err
		}
		_, err = io.WriteString(stdout, timingTable(s))
		return err
	}
	return regenerate(*spec, *out, *check, *scale)
}

// regenerate writes the files the spec at specPath generates into out,
// or with check only compares them with out's.
func regenerate(specPath, out string, check bool, scale int) error {
	if scale < 1 || scale > 3600 {
		return fmt.Errorf("-scale must be between 1 and 3600, got %d", scale)
	}
	if scale != 1 && (check || sameDir(out, "alerts/generated")) {
		return errors.New("-scale writes a test copy: give it an -out of its own, and no -check")
	}
	s, err := loadSpec(specPath)
	if err != nil {
		return err
	}
	files := generate(s, scale)
	if check {
		return stale(out, files)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(out, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// sameDir reports whether a and b name the same directory, however they
// are spelled.
func sameDir(a, b string) bool {
	absA, errA := filepath.Abs(a)
	absB, errB := filepath.Abs(b)
	return errA == nil && errB == nil && absA == absB
}

// stale reports every generated file that is missing, different or no
// longer generated.
func stale(out string, files map[string]string) error {
	var problems []string
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil || !bytes.Equal(got, []byte(want)) {
			problems = append(problems, name)
		}
	}
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		if _, ok := files[e.Name()]; !ok {
			problems = append(problems, e.Name()+" (no longer generated)")
		}
	}
	if len(problems) == 0 {
		return nil
	}
	slices.Sort(problems)
	return errors.New("generated files are stale, run make alerts: " + strings.Join(problems, ", "))
}
