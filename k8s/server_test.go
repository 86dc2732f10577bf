package k8s

import (
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The server's names, as the rest of the platform knows them.
const (
	serverName    = "parley"
	containerName = "parley"
	httpPort      = 8080
	adminPort     = 9091
)

// The server's defaults for the drain (server/internal/app/config.go), for a ConfigMap
// that leaves them out.
const (
	defaultDrainTimeout = 25 * time.Second
	defaultDrainJitter  = 2 * time.Second
)

// withServer is the base and the overlays: every kustomization that holds
// the server.
var withServer = []string{base, staging, production}

func serverDeployment(t *testing.T, m *manifest) *appsv1.Deployment {
	t.Helper()
	return named[*appsv1.Deployment](t, m, serverName)
}

func serverContainer(t *testing.T, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == containerName {
			return c
		}
	}
	t.Fatalf("Deployment %s has no container %q", d.Name, containerName)
	return corev1.Container{}
}

// selects says whether sel selects a pod labelled podLabels.
func selects(t *testing.T, sel *metav1.LabelSelector, podLabels map[string]string) bool {
	t.Helper()
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("label selector %v: %v", sel, err)
	}
	return !s.Empty() && s.Matches(labels.Set(podLabels))
}

// containerPort resolves a probe's or Service's port (a number, or the name
// of one of c's ports) to a number.
func containerPort(t *testing.T, c corev1.Container, p intstr.IntOrString) int32 {
	t.Helper()
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	t.Fatalf("container %s has no port named %q", c.Name, p.StrVal)
	return 0
}

// environment is the container's environment as the kubelet would build it
// from m: envFrom first, then env, each from the ConfigMaps and Secrets in
// m. A reference to a missing object or key fails the test, unless it is
// optional. Values from the downward API are left out.
func environment(t *testing.T, m *manifest, c corev1.Container) map[string]string {
	t.Helper()
	return resolveEnv(t, m, c, true)
}

// settings is the container's environment without what comes from
// Secrets, which the base leaves to the overlays.
func settings(t *testing.T, m *manifest, c corev1.Container) map[string]string {
	t.Helper()
	return resolveEnv(t, m, c, false)
}

func resolveEnv(t *testing.T, m *manifest, c corev1.Container, secrets bool) map[string]string {
	t.Helper()
	configMap := func(name string) map[string]string {
		return named[*corev1.ConfigMap](t, m, name).Data
	}
	secret := func(name string) map[string]string {
		s := named[*corev1.Secret](t, m, name)
		out := map[string]string{}
		for k, v := range s.Data {
			out[k] = string(v)
		}
		for k, v := range s.StringData {
			out[k] = v
		}
		return out
	}
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		var data map[string]string
		switch {
		case from.ConfigMapRef != nil:
			data = configMap(from.ConfigMapRef.Name)
		case from.SecretRef != nil && secrets:
			data = secret(from.SecretRef.Name)
		}
		for k, v := range data {
			env[from.Prefix+k] = v
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			v, ok := configMap(ref.Name)[ref.Key]
			if !ok && (ref.Optional == nil || !*ref.Optional) {
				t.Errorf("%s: %s: ConfigMap %s has no key %s", m.dir, e.Name, ref.Name, ref.Key)
			}
			env[e.Name] = v
		case e.ValueFrom.SecretKeyRef != nil && secrets:
			ref := e.ValueFrom.SecretKeyRef
			v, ok := secret(ref.Name)[ref.Key]
			if !ok && (ref.Optional == nil || !*ref.Optional) {
				t.Errorf("%s: %s: Secret %s has no key %s", m.dir, e.Name, ref.Name, ref.Key)
			}
			env[e.Name] = v
		}
	}
	return env
}

func duration(t *testing.T, env map[string]string, name string, def time.Duration) time.Duration {
	t.Helper()
	v, ok := env[name]
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return d
}

func TestServerProbesHitHealthzAndReadyzOnTheHTTPPort(t *testing.T) {
	t.Parallel()
	for _, dir := range withServer {
		t.Run(dir, func(t *testing.T) {
			c := serverContainer(t, serverDeployment(t, rendered(t, dir)))
			ports := map[string]int32{}
			for _, p := range c.Ports {
				ports[p.Name] = p.ContainerPort
			}
			if ports["http"] != httpPort || ports["admin"] != adminPort {
				t.Errorf("ports %v, want http %d and admin %d", ports, httpPort, adminPort)
			}
			for _, probe := range []struct {
				name  string
				probe *corev1.Probe
				path  string
			}{
				{"liveness", c.LivenessProbe, "/healthz"},
				{"readiness", c.ReadinessProbe, "/readyz"},
				{"startup", c.StartupProbe, "/healthz"},
			} {
				if probe.probe == nil || probe.probe.HTTPGet == nil {
					t.Errorf("%s probe: got none, want GET %s", probe.name, probe.path)
					continue
				}
				get := probe.probe.HTTPGet
				if get.Path != probe.path || containerPort(t, c, get.Port) != httpPort {
					t.Errorf("%s probe: got GET %s on port %d, want %s on %d", probe.name, get.Path, containerPort(t, c, get.Port), probe.path, httpPort)
				}
			}
		})
	}
}

// The kubelet sends SIGTERM after preStop and SIGKILL at the end of the
// grace period: the server's whole drain must fit between them.
func TestServerDrainFitsTheGracePeriod(t *testing.T) {
	t.Parallel()
	for _, dir := range withServer {
		t.Run(dir, func(t *testing.T) {
			m := rendered(t, dir)
			d := serverDeployment(t, m)
			c := serverContainer(t, d)
			if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
				t.Fatal("no preStop sleep: the Service and the Ingress would still send to a server that stopped accepting")
			}
			if c.Lifecycle.PreStop.Exec != nil {
				t.Error("preStop runs a command: the image has no shell")
			}
			pause := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
			if pause < 5*time.Second {
				t.Errorf("preStop sleeps %v, want at least 5s for the endpoint removal to spread", pause)
			}
			env := settings(t, m, c)
			drain := duration(t, env, "PARLEY_DRAIN_TIMEOUT", defaultDrainTimeout)
			jitter := duration(t, env, "PARLEY_DRAIN_JITTER", defaultDrainJitter)
			grace := 30 * time.Second // the API server's default
			if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g != nil {
				grace = time.Duration(*g) * time.Second
			}
			if need := pause + drain + jitter; grace <= need {
				t.Errorf("terminationGracePeriodSeconds %v, want more than preStop %v + drain %v + jitter %v = %v", grace, pause, drain, jitter, need)
			}
			if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
				t.Error("a rollout may take replicas away before their successors are ready: want maxUnavailable 0")
			}
		})
	}
}

func TestServerHasResourcesAndSpreadsOverZonesAndNodes(t *testing.T) {
	t.Parallel()
	for _, dir := range withServer {
		t.Run(dir, func(t *testing.T) {
			d := serverDeployment(t, rendered(t, dir))
			c := serverContainer(t, d)
			for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if _, ok := c.Resources.Requests[name]; !ok {
					t.Errorf("no %s request: the scheduler and the HPA's utilization need one", name)
				}
				if _, ok := c.Resources.Limits[name]; !ok {
					t.Errorf("no %s limit", name)
				}
			}
			keys := map[string]bool{}
			for _, tsc := range d.Spec.Template.Spec.TopologySpreadConstraints {
				if !selects(t, tsc.LabelSelector, d.Spec.Template.Labels) {
					t.Errorf("spread over %s selects %v, not the server's pods", tsc.TopologyKey, tsc.LabelSelector)
				}
				keys[tsc.TopologyKey] = true
			}
			for _, key := range []string{"topology.kubernetes.io/zone", "kubernetes.io/hostname"} {
				if !keys[key] {
					t.Errorf("no topology spread over %s", key)
				}
			}
			if d.Spec.Replicas != nil {
				t.Errorf("spec.replicas is %d: the HorizontalPodAutoscaler owns the count, and every apply would reset it", *d.Spec.Replicas)
			}
		})
	}
}

func TestProductionNeverStacksReplicasInOneZone(t *testing.T) {
	t.Parallel()
	d := serverDeployment(t, rendered(t, production))
	for _, tsc := range d.Spec.Template.Spec.TopologySpreadConstraints {
		if tsc.TopologyKey == "topology.kubernetes.io/zone" && tsc.WhenUnsatisfiable != corev1.DoNotSchedule {
			t.Errorf("zone spread is %s, want %s", tsc.WhenUnsatisfiable, corev1.DoNotSchedule)
		}
	}
}

// The server's settings come from the overlay's ConfigMap and Secret,
// every reference resolves, and the Secret's values pass the server's own
// validation (server/internal/app/config.go) so that the pods start.
func TestServerEnvironmentResolvesAndValidates(t *testing.T) {
	t.Parallel()
	for _, dir := range withServer {
		t.Run(dir, func(t *testing.T) {
			m := rendered(t, dir)
			c := serverContainer(t, serverDeployment(t, m))
			if dir == base {
				// The base has no Secret (the overlays bring it):
				// check only where each secret variable comes from.
				checkSecretSources(t, c)
				return
			}
			env := environment(t, m, c)
			checkSecretSources(t, c)
			if u, err := url.Parse(env["OTEL_EXPORTER_OTLP_ENDPOINT"]); err != nil || u.Host == "" {
				t.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT %q is not a URL", env["OTEL_EXPORTER_OTLP_ENDPOINT"])
			}
			if p := env["OTEL_EXPORTER_OTLP_PROTOCOL"]; p != "grpc" && p != "http/protobuf" {
				t.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q, want grpc or http/protobuf", p)
			}
			if n := len(env["PARLEY_JWT_SECRET"]); n < 32 {
				t.Errorf("PARLEY_JWT_SECRET has %d bytes, the server wants 32 at least", n)
			}
			if n := len(env["PARLEY_ADMIN_TOKEN"]); n < 16 {
				t.Errorf("PARLEY_ADMIN_TOKEN has %d bytes, the server wants 16 at least", n)
			}
			if u, err := url.Parse(env["DATABASE_URL"]); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
				t.Errorf("DATABASE_URL is not a postgres:// URL")
			}
			if u, err := url.Parse(env["REDIS_URL"]); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
				t.Errorf("REDIS_URL is not a redis:// URL")
			}
			for _, a := range []string{env["PARLEY_DRAIN_TIMEOUT"], env["PARLEY_DRAIN_JITTER"]} {
				if _, err := time.ParseDuration(a); err != nil {
					t.Errorf("drain setting %q: %v", a, err)
				}
			}
			ing := named[*networkingv1.Ingress](t, m, serverName)
			origins := strings.Split(env["PARLEY_ALLOWED_ORIGINS"], ",")
			for _, rule := range ing.Spec.Rules {
				if !slices.Contains(origins, "https://"+rule.Host) {
					t.Errorf("PARLEY_ALLOWED_ORIGINS %q leaves out the Ingress's host %s: browsers there could not open a WebSocket", env["PARLEY_ALLOWED_ORIGINS"], rule.Host)
				}
			}
		})
	}
}

// checkSecretSources checks that the secret settings come from a Secret,
// never from a literal in the manifests.
func checkSecretSources(t *testing.T, c corev1.Container) {
	t.Helper()
	from := map[string]*corev1.SecretKeySelector{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			from[e.Name] = e.ValueFrom.SecretKeyRef
		} else if e.Value != "" {
			from[e.Name] = nil
		}
	}
	for _, name := range []string{"DATABASE_URL", "REDIS_URL", "PARLEY_JWT_SECRET", "PARLEY_ADMIN_TOKEN", "SENTRY_DSN"} {
		if ref := from[name]; ref == nil || ref.Key != name {
			t.Errorf("%s does not come from its own key of a Secret", name)
		}
	}
}

func TestFaultInjectionIsOnInStagingAlone(t *testing.T) {
	t.Parallel()
	for dir, want := range map[string]string{staging: "on", production: "off"} {
		m := rendered(t, dir)
		env := environment(t, m, serverContainer(t, serverDeployment(t, m)))
		if got := env["PARLEY_FAULTS"]; got != want {
			t.Errorf("%s: PARLEY_FAULTS %q, want %q", dir, got, want)
		}
		if env["PARLEY_ENVIRONMENT"] != strings.TrimPrefix(dir, "overlays/") {
			t.Errorf("%s: PARLEY_ENVIRONMENT %q", dir, env["PARLEY_ENVIRONMENT"])
		}
	}
}

// Staging runs its own PostgreSQL and Redis: the server's URLs must lead to
// them, with the password PostgreSQL was given.
func TestStagingServerReachesItsDatabaseAndBroker(t *testing.T) {
	t.Parallel()
	m := rendered(t, staging)
	env := environment(t, m, serverContainer(t, serverDeployment(t, m)))

	db, err := url.Parse(env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	pg := named[*appsv1.StatefulSet](t, m, "postgres")
	pgEnv := environment(t, m, pg.Spec.Template.Spec.Containers[0])
	password, _ := db.User.Password()
	if db.User.Username() != pgEnv["POSTGRES_USER"] || password != pgEnv["POSTGRES_PASSWORD"] || strings.TrimPrefix(db.Path, "/") != pgEnv["POSTGRES_DB"] {
		t.Errorf("DATABASE_URL's user, password and database are not those PostgreSQL was created with (user %s, database %s)", pgEnv["POSTGRES_USER"], pgEnv["POSTGRES_DB"])
	}
	checkServiceReaches(t, m, db, pg.Spec.Template.Labels, pg.Spec.Template.Spec.Containers[0])

	redis, err := url.Parse(env["REDIS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	rd := named[*appsv1.Deployment](t, m, "redis")
	checkServiceReaches(t, m, redis, rd.Spec.Template.Labels, rd.Spec.Template.Spec.Containers[0])
}

// checkServiceReaches checks that u's host is a Service of m whose port
// u names leads to c's pods.
func checkServiceReaches(t *testing.T, m *manifest, u *url.URL, podLabels map[string]string, c corev1.Container) {
	t.Helper()
	svc := named[*corev1.Service](t, m, u.Hostname())
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(podLabels)) || len(svc.Spec.Selector) == 0 {
		t.Errorf("Service %s does not select %s's pods", svc.Name, c.Name)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatalf("%s: no port", u.Redacted())
	}
	for _, p := range svc.Spec.Ports {
		if p.Port == int32(port) {
			if got := containerPort(t, c, p.TargetPort); !slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool { return cp.ContainerPort == got }) {
				t.Errorf("Service %s port %d leads to %d, which %s does not listen on", svc.Name, port, got, c.Name)
			}
			return
		}
	}
	t.Errorf("Service %s has no port %d", svc.Name, port)
}

func TestServiceLeadsToTheServersPorts(t *testing.T) {
	t.Parallel()
	for _, dir := range withServer {
		t.Run(dir, func(t *testing.T) {
			m := rendered(t, dir)
			d := serverDeployment(t, m)
			c := serverContainer(t, d)
			svc := named[*corev1.Service](t, m, serverName)
			if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
				t.Fatalf("Service selects %v, not the server's pods %v", svc.Spec.Selector, d.Spec.Template.Labels)
			}
			got := map[string]int32{}
			for _, p := range svc.Spec.Ports {
				got[p.Name] = containerPort(t, c, p.TargetPort)
			}
			if got["http"] != httpPort || got["admin"] != adminPort {
				t.Errorf("Service ports lead to %v, want http to %d and admin to %d", got, httpPort, adminPort)
			}
		})
	}
}

func TestIngressKeepsWebSocketsOpenOverTLS(t *testing.T) {
	t.Parallel()
	for _, dir := range withServer {
		t.Run(dir, func(t *testing.T) {
			m := rendered(t, dir)
			ing := named[*networkingv1.Ingress](t, m, serverName)
			if ing.Spec.IngressClassName == nil || *ing.Spec.IngressClassName != "nginx" {
				t.Error("the annotations are ingress-nginx's: want ingressClassName nginx")
			}
			for _, a := range []string{"nginx.ingress.kubernetes.io/proxy-read-timeout", "nginx.ingress.kubernetes.io/proxy-send-timeout"} {
				if n, err := strconv.Atoi(ing.Annotations[a]); err != nil || n < 3600 {
					t.Errorf("%s is %q, want at least 3600 seconds (the default 60 closes quiet WebSockets)", a, ing.Annotations[a])
				}
			}
			_, issuer := ing.Annotations["cert-manager.io/cluster-issuer"]
			_, nsIssuer := ing.Annotations["cert-manager.io/issuer"]
			covered := map[string]bool{}
			for _, tls := range ing.Spec.TLS {
				if tls.SecretName == "" {
					t.Error("a TLS entry has no secretName")
				}
				for _, h := range tls.Hosts {
					covered[h] = true
				}
			}
			if !issuer && !nsIssuer && len(ing.Spec.TLS) == 0 {
				t.Error("no TLS: want a tls section with a cert-manager issuer or an existing certificate")
			}
			svc := named[*corev1.Service](t, m, serverName)
			c := serverContainer(t, serverDeployment(t, m))
			for _, rule := range ing.Spec.Rules {
				if !covered[rule.Host] {
					t.Errorf("host %s is served without TLS", rule.Host)
				}
				if rule.HTTP == nil {
					continue
				}
				for _, p := range rule.HTTP.Paths {
					b := p.Backend.Service
					if b == nil || b.Name != svc.Name {
						t.Errorf("path %s does not lead to Service %s", p.Path, svc.Name)
						continue
					}
					if got := servicePortTarget(t, svc, c, b.Port); got != httpPort {
						t.Errorf("path %s leads to container port %d, want %d (never the admin port)", p.Path, got, httpPort)
					}
				}
			}
		})
	}
}

// servicePortTarget resolves the Service port an Ingress names to the
// container port it leads to.
func servicePortTarget(t *testing.T, svc *corev1.Service, c corev1.Container, port networkingv1.ServiceBackendPort) int32 {
	t.Helper()
	for _, p := range svc.Spec.Ports {
		if (port.Name != "" && p.Name == port.Name) || (port.Name == "" && p.Port == port.Number) {
			return containerPort(t, c, p.TargetPort)
		}
	}
	t.Fatalf("Service %s has no port %+v", svc.Name, port)
	return 0
}

func TestHPAScalesOnCPUAndConnectionsUpFastDownSlowly(t *testing.T) {
	t.Parallel()
	for _, dir := range withServer {
		t.Run(dir, func(t *testing.T) {
			m := rendered(t, dir)
			hpa := named[*autoscalingv2.HorizontalPodAutoscaler](t, m, serverName)
			ref := hpa.Spec.ScaleTargetRef
			if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || ref.Name != serverDeployment(t, m).Name {
				t.Errorf("scales %s %s, want the server's Deployment", ref.Kind, ref.Name)
			}
			if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 {
				t.Error("minReplicas below 2: one replica's restart would drop every connection")
			} else if hpa.Spec.MaxReplicas <= *hpa.Spec.MinReplicas {
				t.Errorf("maxReplicas %d leaves no room above minReplicas %d", hpa.Spec.MaxReplicas, *hpa.Spec.MinReplicas)
			}
			var cpu, conns bool
			for _, metric := range hpa.Spec.Metrics {
				switch {
				case metric.Type == autoscalingv2.ResourceMetricSourceType && metric.Resource.Name == corev1.ResourceCPU:
					cpu = metric.Resource.Target.Type == autoscalingv2.UtilizationMetricType && metric.Resource.Target.AverageUtilization != nil
				case metric.Type == autoscalingv2.PodsMetricSourceType && metric.Pods.Metric.Name == "parley_ws_connections":
					conns = metric.Pods.Target.Type == autoscalingv2.AverageValueMetricType && metric.Pods.Target.AverageValue != nil && metric.Pods.Target.AverageValue.Sign() > 0
				}
			}
			if !cpu || !conns {
				t.Errorf("metrics: CPU utilization %v, parley_ws_connections per pod %v; want both", cpu, conns)
			}
			b := hpa.Spec.Behavior
			if b == nil || b.ScaleUp == nil || b.ScaleDown == nil {
				t.Fatal("no scaling behavior: the defaults scale down after five minutes, a drain storm")
			}
			if w := b.ScaleUp.StabilizationWindowSeconds; w == nil || *w > 60 {
				t.Error("scale-up waits more than a minute")
			}
			if w := b.ScaleDown.StabilizationWindowSeconds; w == nil || *w < 300 {
				t.Error("scale-down waits less than five minutes of lower demand")
			}
			for _, p := range b.ScaleDown.Policies {
				if p.Type != autoscalingv2.PodsScalingPolicy || p.Value > 1 {
					t.Errorf("scale-down policy %+v removes more than one replica at a time", p)
				}
			}
		})
	}
	stagingHPA := named[*autoscalingv2.HorizontalPodAutoscaler](t, rendered(t, staging), serverName)
	productionHPA := named[*autoscalingv2.HorizontalPodAutoscaler](t, rendered(t, production), serverName)
	if *productionHPA.Spec.MinReplicas <= *stagingHPA.Spec.MinReplicas || productionHPA.Spec.MaxReplicas <= stagingHPA.Spec.MaxReplicas {
		t.Errorf("production scales %d to %d, staging %d to %d: want production above staging at both ends",
			*productionHPA.Spec.MinReplicas, productionHPA.Spec.MaxReplicas, *stagingHPA.Spec.MinReplicas, stagingHPA.Spec.MaxReplicas)
	}
}

func TestPodDisruptionBudgetLetsDrainsThroughOneAtATime(t *testing.T) {
	t.Parallel()
	for _, dir := range withServer {
		t.Run(dir, func(t *testing.T) {
			m := rendered(t, dir)
			d := serverDeployment(t, m)
			hpa := named[*autoscalingv2.HorizontalPodAutoscaler](t, m, serverName)
			var found bool
			for _, pdb := range all[*policyv1.PodDisruptionBudget](m) {
				if !selects(t, pdb.Spec.Selector, d.Spec.Template.Labels) {
					continue
				}
				found = true
				switch {
				case pdb.Spec.MaxUnavailable != nil:
					if pdb.Spec.MaxUnavailable.IntValue() < 1 && pdb.Spec.MaxUnavailable.Type == intstr.Int {
						t.Error("maxUnavailable 0 blocks every node drain")
					}
				case pdb.Spec.MinAvailable != nil:
					if pdb.Spec.MinAvailable.Type == intstr.Int && pdb.Spec.MinAvailable.IntVal >= *hpa.Spec.MinReplicas {
						t.Error("minAvailable reaches minReplicas: it blocks every node drain")
					}
				default:
					t.Error("the budget sets neither maxUnavailable nor minAvailable")
				}
			}
			if !found {
				t.Error("no PodDisruptionBudget selects the server's pods")
			}
		})
	}
}

// The alerts and dashboards select job="parley", and the prometheus-adapter
// rule needs the pod and namespace labels Prometheus gives each target.
func TestServiceMonitorScrapesTheAdminPortAsJobParley(t *testing.T) {
	t.Parallel()
	for _, dir := range withServer {
		t.Run(dir, func(t *testing.T) {
			m := rendered(t, dir)
			sm := named[*monitoringv1.ServiceMonitor](t, m, serverName)
			var selected []*corev1.Service
			for _, svc := range all[*corev1.Service](m) {
				if selects(t, &sm.Spec.Selector, svc.Labels) {
					selected = append(selected, svc)
				}
			}
			if len(selected) != 1 || selected[0].Name != serverName {
				t.Fatalf("selects %d Services, want the server's alone", len(selected))
			}
			svc := selected[0]
			job := svc.Name // the operator's default
			if sm.Spec.JobLabel != "" {
				job = svc.Labels[sm.Spec.JobLabel]
			}
			c := serverContainer(t, serverDeployment(t, m))
			if len(sm.Spec.Endpoints) == 0 {
				t.Fatal("no endpoints")
			}
			for _, ep := range sm.Spec.Endpoints {
				if ep.Port == "" {
					t.Fatal("an endpoint names no Service port")
				}
				if got := servicePortTarget(t, svc, c, networkingv1.ServiceBackendPort{Name: ep.Port}); got != adminPort {
					t.Errorf("scrapes container port %d, want the admin port %d", got, adminPort)
				}
				if ep.Path != "" && ep.Path != "/metrics" {
					t.Errorf("scrapes %s, want /metrics", ep.Path)
				}
				for _, r := range ep.RelabelConfigs {
					switch r.TargetLabel {
					case "job":
						if r.Replacement != nil {
							job = *r.Replacement
						}
					case "namespace", "pod":
						t.Errorf("relabels %s, which prometheus-adapter ties each series to its pod by", r.TargetLabel)
					}
				}
			}
			if job != "parley" {
				t.Errorf("job label %q, want parley", job)
			}
		})
	}
}

// The server believes X-Forwarded-For from the ingress controller's pod
// network and from nothing wider: a private range, never the whole
// internet, in every overlay.
func TestServerTrustsTheIngressControllersNetworkOnly(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{staging, production, onKind} {
		m := rendered(t, dir)
		env := environment(t, m, serverContainer(t, serverDeployment(t, m)))
		v := env["PARLEY_TRUSTED_PROXIES"]
		if v == "" {
			t.Errorf("%s: PARLEY_TRUSTED_PROXIES is unset: every client would count as the ingress controller", dir)
			continue
		}
		for entry := range strings.SplitSeq(v, ",") {
			prefix, err := netip.ParsePrefix(strings.TrimSpace(entry))
			if err != nil {
				t.Errorf("%s: PARLEY_TRUSTED_PROXIES entry %q: %v", dir, entry, err)
				continue
			}
			if !prefix.Addr().IsPrivate() || prefix.Bits() < 8 {
				t.Errorf("%s: PARLEY_TRUSTED_PROXIES trusts %s, beyond a cluster's private network: anyone there could name any address", dir, prefix)
			}
		}
	}
}
