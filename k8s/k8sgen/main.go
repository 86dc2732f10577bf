// Command k8sgen copies what the Kubernetes manifests share with alerts/ and
// dashboards/ into k8s/base/generated/, where kustomize can read it
// (kustomize refuses files outside a kustomization's root):
//
//   - prometheusrule.yaml: one PrometheusRule holding the groups of
//     alerts/rules/*.rules.yml and alerts/generated/*.rules.yml, in that order;
//   - dashboard-<name>.yaml: a ConfigMap per dashboards/<name>.json, labelled
//     for the Grafana sidecar, holding the file unchanged;
//   - alertmanager-config.yaml: the Secret the Alertmanager resource reads,
//     holding alerts/alertmanager.yml and alerts/templates/*.tmpl;
//   - kustomization.yaml: the list of the above.
//
// Run it from the repository's root after changing alerts/ or dashboards/
// (go run ./k8s/k8sgen), and commit the result: a test fails when it is
// stale.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "k8sgen:", err)
		os.Exit(1)
	}
}

// run is the whole program, for main and for tests. k8sgen reads no
// environment, prints nothing and is over too soon to interrupt: it takes
// ctx, getenv and stdout to have every command's shape.
func run(_ context.Context, args []string, _ func(string) string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("k8sgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", ".", "the repository's root directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	files, err := generate(os.DirFS(*root))
	if err != nil {
		return err
	}
	return write(filepath.Join(*root, filepath.FromSlash(outDir)), files)
}
