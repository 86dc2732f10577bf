package k8s

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	serializerjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// The kustomizations under k8s/, each rendered by the tests.
const (
	base       = "base"
	staging    = "overlays/staging"
	production = "overlays/production"
	autoscale  = "checks/autoscale"
	adapter    = "prometheus-adapter"
	// onKind is staging as CI's kind cluster runs it.
	onKind = "kind"
)

var (
	kustomizations = []string{base, staging, production, autoscale, adapter, onKind}
	// overlays are the environments: the base made deployable.
	overlays = []string{staging, production}
	// deployables are what gets applied to a cluster, so every image in
	// them must be pinned.
	deployables = []string{staging, production, autoscale, adapter, onKind}
)

// manifest is one kustomization's output: the YAML kustomize wrote, and
// each object decoded into its typed Go struct.
type manifest struct {
	dir     string
	yaml    []byte
	objects []runtime.Object
}

// all returns the manifest's objects of type T.
func all[T runtime.Object](m *manifest) []T {
	var out []T
	for _, o := range m.objects {
		if v, ok := o.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// named returns the manifest's object of type T called name, failing the
// test when there is none.
func named[T runtime.Object](t *testing.T, m *manifest, name string) T {
	t.Helper()
	for _, o := range all[T](m) {
		if metaOf(o).GetName() == name {
			return o
		}
	}
	var zero T
	t.Fatalf("%s: no %T named %q", m.dir, zero, name)
	return zero
}

func metaOf(o runtime.Object) metav1.Object {
	m, ok := o.(metav1.Object)
	if !ok {
		panic(fmt.Sprintf("%T has no object metadata", o))
	}
	return m
}

func kindOf(o runtime.Object) string {
	return strings.TrimPrefix(fmt.Sprintf("%T", o), "*")
}

// scheme knows the built-in kinds client-go knows, and the
// prometheus-operator's monitoring.coreos.com/v1 (nothing here uses
// v1alpha1, whose package needs a module go.mod does not have). A kind
// outside it fails decoding.
func scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme,
		monitoringv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// strictDecoder decodes YAML into typed objects and fails on an unknown or
// duplicated field, with field names matched exactly (encoding/json alone
// would accept "Image" for "image").
func strictDecoder() (runtime.Decoder, error) {
	s, err := scheme()
	if err != nil {
		return nil, err
	}
	return serializerjson.NewSerializerWithOptions(serializerjson.DefaultMetaFactory, s, s,
		serializerjson.SerializerOptions{Yaml: true, Strict: true}), nil
}

// renderAll renders every kustomization once per test binary.
var renderAll = sync.OnceValues(func() (map[string]*manifest, error) {
	dir, err := os.MkdirTemp("", "parley-k8s-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := copyTree(".", dir); err != nil {
		return nil, err
	}
	dec, err := strictDecoder()
	if err != nil {
		return nil, err
	}
	out := map[string]*manifest{}
	for _, k := range kustomizations {
		m, err := render(dec, dir, k)
		if err != nil {
			return nil, err
		}
		out[k] = m
	}
	return out, nil
})

// rendered returns the kustomization in dir, rendered.
func rendered(t *testing.T, dir string) *manifest {
	t.Helper()
	all, err := renderAll()
	if err != nil {
		t.Fatal(err)
	}
	return all[dir]
}

// render runs kustomize (its library, as `kubectl kustomize` does) on
// root/dir and decodes every object strictly.
func render(dec runtime.Decoder, root, dir string) (*manifest, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	res, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(root, dir))
	if err != nil {
		return nil, fmt.Errorf("%s: kustomize: %w", dir, err)
	}
	yaml, err := res.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	m := &manifest{dir: dir, yaml: yaml}
	for _, r := range res.Resources() {
		data, err := r.AsYAML()
		if err != nil {
			return nil, fmt.Errorf("%s: %s %s: %w", dir, r.GetKind(), r.GetName(), err)
		}
		obj, _, err := dec.Decode(data, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %s %s: %w", dir, r.GetKind(), r.GetName(), err)
		}
		m.objects = append(m.objects, obj)
	}
	return m, nil
}

// copyTree copies the manifests under src (k8s/) to dst, and stands each
// overlay's example secrets in for the gitignored files the overlay reads
// (secrets.env.example becomes secrets.env), so that the render never
// depends on a developer's own secrets.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if strings.HasSuffix(p, ".go") || strings.HasSuffix(p, ".env") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(target, data, 0o644); err != nil {
			return err
		}
		if stand, ok := strings.CutSuffix(target, ".env.example"); ok {
			return os.WriteFile(stand+".env", data, 0o644)
		}
		return nil
	})
}

// podTemplate is a pod some workload runs.
type podTemplate struct {
	owner  string // kind/name
	labels map[string]string
	spec   corev1.PodSpec
}

// podTemplates returns the pods of every workload in m.
func podTemplates(m *manifest) []podTemplate {
	var out []podTemplate
	add := func(o runtime.Object, t corev1.PodTemplateSpec) {
		out = append(out, podTemplate{owner: kindOf(o) + "/" + metaOf(o).GetName(), labels: t.Labels, spec: t.Spec})
	}
	for _, o := range m.objects {
		switch w := o.(type) {
		case *appsv1.Deployment:
			add(w, w.Spec.Template)
		case *appsv1.StatefulSet:
			add(w, w.Spec.Template)
		case *appsv1.DaemonSet:
			add(w, w.Spec.Template)
		case *batchv1.Job:
			add(w, w.Spec.Template)
		case *batchv1.CronJob:
			add(w, w.Spec.JobTemplate.Spec.Template)
		case *corev1.Pod:
			out = append(out, podTemplate{owner: "Pod/" + w.Name, labels: w.Labels, spec: w.Spec})
		}
	}
	return out
}

// containers returns a pod's init and app containers.
func containers(spec corev1.PodSpec) []corev1.Container {
	return append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
}

// The decoder the renders go through refuses what the API server would
// silently drop or reject: a misspelt field, a field in the wrong case, and
// a kind neither client-go nor the prometheus-operator knows.
func TestStrictDecodingRefusesWhatTheAPIWouldNotTake(t *testing.T) {
	t.Parallel()
	dec, err := strictDecoder()
	if err != nil {
		t.Fatal(err)
	}
	for name, doc := range map[string]string{
		"a misspelt field":          "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replica: 2}\n",
		"a field in the wrong case": "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: [{name: x, Image: y}]}\n",
		"an unknown kind":           "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: x}\n",
		"a removed API version":     "apiVersion: autoscaling/v2beta1\nkind: HorizontalPodAutoscaler\nmetadata: {name: x}\n",
	} {
		if _, _, err := dec.Decode([]byte(doc), nil, nil); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	if _, _, err := dec.Decode([]byte("apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: x}\nspec: {selector: {}}\n"), nil, nil); err != nil {
		t.Errorf("a prometheus-operator kind: %v", err)
	}
}
