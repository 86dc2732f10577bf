package k8s

import (
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/parleychat/parley/loadtest/scenario"
	"github.com/prometheus/prometheus/promql/parser"
	yamlv3 "go.yaml.in/yaml/v3"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/client-go/tools/clientcmd"
)

// The in-cluster paths of a pod's service account token and CA.
const (
	tokenPath = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	caPath    = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
)

// flagValue returns the value of the loadtest flag name in args, written
// -name=value or -name value.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "-"+name+"="); ok {
			return v, true
		}
		if a == "-"+name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

func loadtestContainer(t *testing.T, j *batchv1.Job) corev1.Container {
	t.Helper()
	for _, c := range j.Spec.Template.Spec.Containers {
		if strings.Contains(c.Image, "ghcr.io/parleychat/parley-loadtest") {
			return c
		}
	}
	t.Fatalf("Job %s runs no ghcr.io/parleychat/parley-loadtest container", j.Name)
	return corev1.Container{}
}

// checkTargetsTheServer checks that the Job's -target is the server's
// Service, on the port that leads to its API, and that the staging
// policies let the Job's pods through.
func checkTargetsTheServer(t *testing.T, j *batchv1.Job, args []string) {
	t.Helper()
	m := rendered(t, staging)
	target, _ := flagValue(args, "target")
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "http" {
		t.Fatalf("-target %q: want the in-cluster Service's http:// URL", target)
	}
	d := serverDeployment(t, m)
	c := serverContainer(t, d)
	svc := named[*corev1.Service](t, m, u.Hostname())
	if svc.Name != serverName {
		t.Errorf("-target is Service %s, want %s", svc.Name, serverName)
	}
	want := u.Port()
	if want == "" {
		want = "80"
	}
	var port int32
	for _, p := range svc.Spec.Ports {
		if want == strconv.Itoa(int(p.Port)) {
			port = containerPort(t, c, p.TargetPort)
			break
		}
	}
	if port != httpPort {
		t.Errorf("-target %s leads to container port %d, want %d", target, port, httpPort)
	}
	ns := metaOf(d).GetNamespace()
	if metaOf(j).GetNamespace() != ns {
		t.Errorf("Job runs in %s, the server in %s: -target %s would not resolve", metaOf(j).GetNamespace(), ns, target)
	}
	src := pod(metaOf(j).GetNamespace(), j.Spec.Template.Labels)
	dst := pod(ns, d.Spec.Template.Labels, c.Ports...)
	if !allows(t, all[*networkingv1.NetworkPolicy](m), src, dst, httpPort, corev1.ProtocolTCP) {
		t.Errorf("staging's NetworkPolicies keep Job %s from the server", j.Name)
	}
}

// The smoke test runs as a Job in staging: the shipped smoke scenario
// against the in-cluster Service, failing at once on a broken threshold.
func TestStagingRunsTheSmokeScenarioAsAJob(t *testing.T) {
	t.Parallel()
	m := rendered(t, staging)
	jobs := all[*batchv1.Job](m)
	if len(jobs) != 1 {
		t.Fatalf("%d Jobs in staging, want the smoke test", len(jobs))
	}
	j := jobs[0]
	c := loadtestContainer(t, j)
	file, ok := flagValue(c.Args, "scenario")
	rel, inImage := strings.CutPrefix(file, "/scenarios/")
	if !ok || !inImage {
		t.Fatalf("-scenario %q: want one of the image's /scenarios/*.yaml", file)
	}
	if rel != "smoke.yaml" {
		t.Errorf("runs %s, want smoke.yaml", rel)
	}
	if _, err := scenario.Load(filepath.Join("../loadtest/scenarios", rel)); err != nil {
		t.Errorf("the image's %s: %v", file, err)
	}
	checkTargetsTheServer(t, j, c.Args)

	spec := j.Spec.Template.Spec
	if spec.RestartPolicy != corev1.RestartPolicyNever {
		t.Error("restartPolicy is not Never: the Job's failure policy needs it")
	}
	failsOnThreshold := false
	if p := j.Spec.PodFailurePolicy; p != nil {
		for _, r := range p.Rules {
			if r.Action == batchv1.PodFailurePolicyActionFailJob && r.OnExitCodes != nil &&
				r.OnExitCodes.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn && slices.Contains(r.OnExitCodes.Values, 1) {
				failsOnThreshold = true
			}
		}
	}
	if !failsOnThreshold {
		t.Error("a broken threshold (exit 1) would be retried until it passes: want a podFailurePolicy failing the Job on exit code 1")
	}
	if j.Spec.BackoffLimit == nil || *j.Spec.BackoffLimit < 1 {
		t.Error("no retries: a run made before the server is ready (exit 2) fails the Job")
	}
	if j.Spec.ActiveDeadlineSeconds == nil {
		t.Error("no activeDeadlineSeconds: a hung run would hold the deploy forever")
	}
}

// The autoscale check reads the staging Deployment through the Kubernetes
// API with a kubeconfig that uses the pod's own token, under a Role that
// grants that one read, and drives enough connections to make staging's
// HPA scale out.
func TestAutoscaleCheckCanSeeAndScaleTheStagingDeployment(t *testing.T) {
	t.Parallel()
	m := rendered(t, autoscale)
	jobs := all[*batchv1.Job](m)
	if len(jobs) != 1 {
		t.Fatalf("%d Jobs, want the autoscale check", len(jobs))
	}
	j := jobs[0]
	c := loadtestContainer(t, j)
	checks, _ := flagValue(c.Args, "check")
	if !slices.Contains(strings.Split(checks, ","), "autoscale") {
		t.Fatalf("-check %q, want autoscale", checks)
	}
	checkTargetsTheServer(t, j, c.Args)
	if j.Spec.BackoffLimit == nil || *j.Spec.BackoffLimit != 0 {
		t.Error("a retry would start from the replicas the first attempt added, and see no growth: want backoffLimit 0")
	}

	stagingManifest := rendered(t, staging)
	d := serverDeployment(t, stagingManifest)
	deployment, _ := flagValue(c.Args, "deployment")
	if want := metaOf(d).GetNamespace() + "/" + d.Name; deployment != want {
		t.Errorf("-deployment %q, want %q", deployment, want)
	}

	// The kubeconfig: the API server's in-cluster address, the token and
	// CA the kubelet mounts.
	kubeconfig, _ := flagValue(c.Args, "kubeconfig")
	cfg, err := clientcmd.Load(mountedFile(t, m, j, c, kubeconfig))
	if err != nil {
		t.Fatalf("-kubeconfig %s: %v", kubeconfig, err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	if ctx == nil || cfg.Clusters[ctx.Cluster] == nil || cfg.AuthInfos[ctx.AuthInfo] == nil {
		t.Fatalf("-kubeconfig %s: the current context is incomplete", kubeconfig)
	}
	cluster, user := cfg.Clusters[ctx.Cluster], cfg.AuthInfos[ctx.AuthInfo]
	if cluster.Server != "https://kubernetes.default.svc" || cluster.CertificateAuthority != caPath {
		t.Errorf("cluster %s with CA %s, want https://kubernetes.default.svc with %s", cluster.Server, cluster.CertificateAuthority, caPath)
	}
	if user.TokenFile != tokenPath {
		t.Errorf("token file %s, want %s", user.TokenFile, tokenPath)
	}
	if a := j.Spec.Template.Spec.AutomountServiceAccountToken; a == nil || !*a {
		t.Error("the pod does not mount its service account token, which the kubeconfig reads")
	}

	// The Role bound to the pod's service account lets it get the
	// Deployment.
	sa := j.Spec.Template.Spec.ServiceAccountName
	granted := false
	for _, rb := range all[*rbacv1.RoleBinding](m) {
		if !slices.ContainsFunc(rb.Subjects, func(s rbacv1.Subject) bool { return s.Kind == rbacv1.ServiceAccountKind && s.Name == sa }) {
			continue
		}
		role := named[*rbacv1.Role](t, m, rb.RoleRef.Name)
		for _, r := range role.Rules {
			if slices.Contains(r.APIGroups, "apps") && slices.Contains(r.Resources, "deployments") && slices.Contains(r.Verbs, "get") &&
				(len(r.ResourceNames) == 0 || slices.Contains(r.ResourceNames, d.Name)) {
				granted = true
			}
		}
	}
	if !granted {
		t.Errorf("service account %q may not get Deployment %s", sa, d.Name)
	}

	// Enough connections for staging's HPA to want more than its minimum.
	file, _ := flagValue(c.Args, "scenario")
	sc, err := scenario.Parse(mountedFile(t, m, j, c, file), path.Base(file))
	if err != nil {
		t.Fatal(err)
	}
	hpa := named[*autoscalingv2.HorizontalPodAutoscaler](t, stagingManifest, serverName)
	for _, metric := range hpa.Spec.Metrics {
		if metric.Type != autoscalingv2.PodsMetricSourceType || metric.Pods.Metric.Name != "parley_ws_connections" {
			continue
		}
		perPod := metric.Pods.Target.AverageValue.Value()
		if need := perPod * int64(*hpa.Spec.MinReplicas); int64(sc.Users.Count) <= need {
			t.Errorf("%d users hold %d connections, which staging's %d replicas at %d each take without scaling", sc.Users.Count, sc.Users.Count, *hpa.Spec.MinReplicas, perPod)
		}
	}
}

// mountedFile returns the file the container sees at p, from the ConfigMap
// volume mounted over its directory.
func mountedFile(t *testing.T, m *manifest, j *batchv1.Job, c corev1.Container, p string) []byte {
	t.Helper()
	for _, vm := range c.VolumeMounts {
		if path.Dir(p) != path.Clean(vm.MountPath) {
			continue
		}
		for _, v := range j.Spec.Template.Spec.Volumes {
			if v.Name == vm.Name && v.ConfigMap != nil {
				data, ok := named[*corev1.ConfigMap](t, m, v.ConfigMap.Name).Data[path.Base(p)]
				if !ok {
					t.Fatalf("ConfigMap %s has no %s", v.ConfigMap.Name, path.Base(p))
				}
				return []byte(data)
			}
		}
	}
	t.Fatalf("%s: no ConfigMap is mounted there", p)
	return nil
}

// adapterConfig is the part of prometheus-adapter's configuration file
// used here, decoded strictly so that a misspelt field fails.
type adapterConfig struct {
	Rules []struct {
		SeriesQuery   string `yaml:"seriesQuery"`
		SeriesFilters []struct {
			Is    string `yaml:"is"`
			IsNot string `yaml:"isNot"`
		} `yaml:"seriesFilters"`
		Resources struct {
			Overrides map[string]struct {
				Group    string `yaml:"group"`
				Resource string `yaml:"resource"`
			} `yaml:"overrides"`
			Template string `yaml:"template"`
		} `yaml:"resources"`
		Name struct {
			Matches string `yaml:"matches"`
			As      string `yaml:"as"`
		} `yaml:"name"`
		MetricsQuery string `yaml:"metricsQuery"`
	} `yaml:"rules"`
}

// Every Pods metric of the HPAs is one the prometheus-adapter rule serves,
// tied to the pod and namespace its series came from.
func TestPrometheusAdapterServesTheHPAsConnectionMetric(t *testing.T) {
	t.Parallel()
	m := rendered(t, adapter)
	data, ok := named[*corev1.ConfigMap](t, m, "parley-prometheus-adapter").Data["config.yaml"]
	if !ok {
		t.Fatal("the ConfigMap has no config.yaml, the file the chart mounts")
	}
	var cfg adapterConfig
	dec := yamlv3.NewDecoder(strings.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("config.yaml: %v", err)
	}
	serves := map[string]bool{}
	for _, r := range cfg.Rules {
		matchers, err := parser.NewParser(parser.Options{}).ParseMetricSelector(r.SeriesQuery)
		if err != nil {
			t.Errorf("seriesQuery %q: %v", r.SeriesQuery, err)
			continue
		}
		var series string
		for _, mt := range matchers {
			if mt.Name == "__name__" {
				series = mt.Value
			}
		}
		name := series
		if r.Name.Matches != "" {
			re, err := regexp.Compile(r.Name.Matches)
			if err != nil || !re.MatchString(series) {
				t.Errorf("name.matches %q does not match the series %s", r.Name.Matches, series)
				continue
			}
			name = re.ReplaceAllString(series, r.Name.As)
		}
		for label, want := range map[string]string{"namespace": "namespace", "pod": "pod"} {
			if got := r.Resources.Overrides[label].Resource; got != want {
				t.Errorf("%s: label %s maps to resource %q, want %q", name, label, got, want)
			}
		}
		for _, part := range []string{"<<.Series>>", "<<.LabelMatchers>>", "<<.GroupBy>>"} {
			if !strings.Contains(r.MetricsQuery, part) {
				t.Errorf("%s: metricsQuery leaves out %s", name, part)
			}
		}
		serves[name] = true
	}
	for _, dir := range withServer {
		hpa := named[*autoscalingv2.HorizontalPodAutoscaler](t, rendered(t, dir), serverName)
		for _, metric := range hpa.Spec.Metrics {
			if metric.Type == autoscalingv2.PodsMetricSourceType && !serves[metric.Pods.Metric.Name] {
				t.Errorf("%s: the HPA asks for %s, which no adapter rule serves", dir, metric.Pods.Metric.Name)
			}
		}
	}
}
