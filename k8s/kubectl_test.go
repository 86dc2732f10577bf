package k8s

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	yamlv3 "go.yaml.in/yaml/v3"

	"github.com/parleychat/parley/internal/testenv"
)

// kubectl's kustomize (what `kubectl apply -k` runs) renders the same
// objects as the library the tests use, in whatever order (kustomize's
// versions order their output differently). Without kubectl the
// standalone kustomize CLI stands in (.ci/run installs it when kubectl is
// missing); with neither the test skips, or fails under CI=true.
func TestKubectlKustomizeRendersTheSameObjects(t *testing.T) {
	t.Parallel()
	render := func(dir string) *exec.Cmd { return exec.Command("kubectl", "kustomize", dir) }
	if _, err := exec.LookPath("kubectl"); err != nil {
		kustomize := testenv.FindGo(t, "kustomize", "sigs.k8s.io/kustomize/kustomize/v5@v5.8.1")
		render = func(dir string) *exec.Cmd { return exec.Command(kustomize, "build", dir) }
	}
	dir := t.TempDir()
	if err := copyTree(".", dir); err != nil {
		t.Fatal(err)
	}
	for _, k := range kustomizations {
		t.Run(k, func(t *testing.T) {
			out, err := render(filepath.Join(dir, k)).Output()
			if err != nil {
				var exit *exec.ExitError
				if errors.As(err, &exit) {
					t.Fatalf("kustomize: %v\n%s", err, exit.Stderr)
				}
				t.Fatal(err)
			}
			got, want := documents(t, out), documents(t, rendered(t, k).yaml)
			for id, w := range want {
				if g, ok := got[id]; !ok {
					t.Errorf("%s: kubectl does not render it", id)
				} else if !reflect.DeepEqual(g, w) {
					t.Errorf("%s differs:\nkubectl: %v\nlibrary: %v", id, g, w)
				}
			}
			for id := range got {
				if _, ok := want[id]; !ok {
					t.Errorf("%s: only kubectl renders it", id)
				}
			}
		})
	}
}

// documents returns the objects of a multi-document YAML stream by
// kind/namespace/name.
func documents(t *testing.T, data []byte) map[string]map[string]any {
	t.Helper()
	docs := map[string]map[string]any{}
	dec := yamlv3.NewDecoder(bytes.NewReader(data))
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatal(err)
		}
		meta, _ := doc["metadata"].(map[string]any)
		docs[fmt.Sprintf("%v/%v/%v", doc["kind"], meta["namespace"], meta["name"])] = doc
	}
}
