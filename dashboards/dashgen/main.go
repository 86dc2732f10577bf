// Command dashgen writes Parley's Grafana dashboards, one JSON file per
// board, into dashboards/. The boards are declared in Go (boards.go) so that
// panel ids, grid positions and queries follow one set of conventions that
// tests can check, instead of drifting in hand-edited JSON. With -check it
// writes nothing and fails when the files on disk differ from what it would
// write.
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
		fmt.Fprintln(os.Stderr, "dashgen:", err)
		os.Exit(1)
	}
}

// run is the whole program, for main and for tests. dashgen reads no
// environment, prints nothing and is over too soon to interrupt: it takes
// ctx, getenv and stdout to have every command's shape.
func run(_ context.Context, args []string, _ func(string) string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("dashgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "dashboards", "where the dashboard JSON files go")
	check := fs.Bool("check", false, "fail if the dashboard files are stale instead of writing them")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	files, err := generate()
	if err != nil {
		return err
	}
	if *check {
		return stale(*out, files)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(*out, name), content, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// generate returns every dashboard file by name.
func generate() (map[string][]byte, error) {
	files := map[string][]byte{}
	for _, b := range boards() {
		content, err := encode(b.dashboard())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.uid, err)
		}
		files[b.uid+".json"] = content
	}
	return files, nil
}

// stale reports every generated file that is missing, different or no
// longer generated. Only JSON files count: the output directory also holds
// the README, the provisioning files and this generator.
func stale(out string, files map[string][]byte) error {
	var problems []string
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil || !bytes.Equal(got, want) {
			problems = append(problems, name)
		}
	}
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		if _, ok := files[e.Name()]; !ok && !e.IsDir() && strings.HasSuffix(e.Name(), ".json") {
			problems = append(problems, e.Name()+" (no longer generated)")
		}
	}
	if len(problems) == 0 {
		return nil
	}
	slices.Sort(problems)
	return errors.New("dashboards are stale, run make dashboards: " + strings.Join(problems, ", "))
}
