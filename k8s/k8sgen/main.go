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
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "k8sgen:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
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
