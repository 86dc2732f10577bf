package k8s

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// datastore is one of staging's in-cluster datastores and the exporter
// that runs beside it.
type datastore struct {
	name      string // the workload, its PodMonitor and its Prometheus job
	port      int32  // the datastore's own port
	exporter  string // the exporter's container
	image     string // the version the metric contract is tested against (dashboards/README.md)
	metrics   int32  // the exporter's port
	pod       corev1.PodTemplateSpec
	container corev1.Container // the datastore's own container
}

func stagingDatastores(t *testing.T, m *manifest) []datastore {
	t.Helper()
	pg := named[*appsv1.StatefulSet](t, m, "postgres")
	rd := named[*appsv1.Deployment](t, m, "redis")
	return []datastore{
		{name: "postgres", port: 5432, exporter: "postgres-exporter", image: "quay.io/prometheuscommunity/postgres-exporter:v0.11.1", metrics: 9187,
			pod: pg.Spec.Template, container: pg.Spec.Template.Spec.Containers[0]},
		{name: "redis", port: 6379, exporter: "redis-exporter", image: "oliver006/redis_exporter:v1.45.0", metrics: 9121,
			pod: rd.Spec.Template, container: rd.Spec.Template.Spec.Containers[0]},
	}
}

func (d datastore) exporterContainer(t *testing.T) corev1.Container {
	t.Helper()
	for _, c := range d.pod.Spec.Containers {
		if c.Name == d.exporter {
			return c
		}
	}
	t.Fatalf("%s's pod has no container %s", d.name, d.exporter)
	return corev1.Container{}
}

// Each datastore in staging has its exporter beside it, at the pinned
// version, and a PodMonitor that scrapes that exporter, and nothing else, as
// the job the board and the datastore alerts select, each target named by
// its pod.
func TestStagingDatastoresAreScrapedThroughTheirExporters(t *testing.T) {
	t.Parallel()
	m := rendered(t, staging)
	for _, d := range stagingDatastores(t, m) {
		t.Run(d.name, func(t *testing.T) {
			c := d.exporterContainer(t)
			if c.Image != d.image {
				t.Errorf("%s runs %s, want %s, the version the metric contract is tested against", c.Name, c.Image, d.image)
			}
			if c.ReadinessProbe != nil {
				t.Errorf("%s has a readiness probe: an exporter that is not ready would take %s out of its Service", c.Name, d.name)
			}
			pm := named[*monitoringv1.PodMonitor](t, m, d.name)
			var selected []string
			for _, p := range podTemplates(m) {
				if selects(t, &pm.Spec.Selector, p.labels) {
					selected = append(selected, p.owner)
				}
			}
			if len(selected) != 1 || !selects(t, &pm.Spec.Selector, d.pod.Labels) {
				t.Fatalf("PodMonitor %s selects %v, want %s's pod alone", pm.Name, selected, d.name)
			}
			if job := d.pod.Labels[pm.Spec.JobLabel]; pm.Spec.JobLabel == "" || job != d.name {
				t.Errorf("PodMonitor %s gives job %q (jobLabel %q), want %s", pm.Name, job, pm.Spec.JobLabel, d.name)
			}
			if len(pm.Spec.PodMetricsEndpoints) != 1 {
				t.Fatalf("PodMonitor %s has %d endpoints, want 1", pm.Name, len(pm.Spec.PodMetricsEndpoints))
			}
			ep := pm.Spec.PodMetricsEndpoints[0]
			if ep.Port == nil || containerPort(t, c, intstr.FromString(*ep.Port)) != d.metrics {
				t.Errorf("PodMonitor %s scrapes port %v, want %s's %d", pm.Name, ep.Port, c.Name, d.metrics)
			}
			if ep.Path != "" && ep.Path != "/metrics" {
				t.Errorf("PodMonitor %s scrapes %s, want /metrics", pm.Name, ep.Path)
			}
			if !slices.ContainsFunc(ep.RelabelConfigs, func(r monitoringv1.RelabelConfig) bool {
				return r.TargetLabel == "instance" && slices.Equal(r.SourceLabels, []monitoringv1.LabelName{"__meta_kubernetes_pod_name"})
			}) {
				t.Errorf("PodMonitor %s does not name its targets by pod", pm.Name)
			}
		})
	}
}

// Prometheus reaches the exporters' ports and nothing else of the
// datastores; the server reaches the datastores and not the exporters.
func TestNetworkPoliciesLetPrometheusScrapeTheExporters(t *testing.T) {
	t.Parallel()
	m := rendered(t, staging)
	ns := metaOf(serverDeployment(t, m)).GetNamespace()
	policies := all[*networkingv1.NetworkPolicy](m)
	prometheus := pod("monitoring", map[string]string{"app.kubernetes.io/name": "prometheus"})
	d := serverDeployment(t, m)
	server := pod(ns, d.Spec.Template.Labels, serverContainer(t, d).Ports...)
	stranger := pod(ns, map[string]string{"app": "something-else"})
	for _, ds := range stagingDatastores(t, m) {
		var ports []corev1.ContainerPort
		for _, c := range ds.pod.Spec.Containers {
			ports = append(ports, c.Ports...)
		}
		dst := pod(ns, ds.pod.Labels, ports...)
		for _, c := range []connection{
			{"Prometheus scrapes the exporter", prometheus, dst, ds.metrics, corev1.ProtocolTCP, true},
			{"Prometheus cannot reach the datastore itself", prometheus, dst, ds.port, corev1.ProtocolTCP, false},
			{"another pod of the namespace cannot reach the exporter", stranger, dst, ds.metrics, corev1.ProtocolTCP, false},
			{"the server cannot reach the exporter", server, dst, ds.metrics, corev1.ProtocolTCP, false},
		} {
			if got := allows(t, policies, c.src, c.dst, c.port, c.proto); got != c.want {
				t.Errorf("%s: %s: allowed %v, want %v", ds.name, c.name, got, c.want)
			}
		}
	}
}

// The PostgreSQL exporter signs in as the user PostgreSQL was created with,
// with its password, over loopback to PostgreSQL's own port.
func TestPostgresExporterSignsInAsTheDatabasesUser(t *testing.T) {
	t.Parallel()
	m := rendered(t, staging)
	d := stagingDatastores(t, m)[0]
	pg := environment(t, m, d.container)
	env := environment(t, m, d.exporterContainer(t))
	want := "127.0.0.1:" + strconv.Itoa(int(d.port)) + "/" + pg["POSTGRES_DB"] + "?"
	if !strings.HasPrefix(env["DATA_SOURCE_URI"], want) {
		t.Errorf("DATA_SOURCE_URI is %q, want %s...", env["DATA_SOURCE_URI"], want)
	}
	if env["DATA_SOURCE_USER"] != pg["POSTGRES_USER"] || env["DATA_SOURCE_PASS"] != pg["POSTGRES_PASSWORD"] || env["DATA_SOURCE_PASS"] == "" {
		t.Error("the exporter's user and password are not those PostgreSQL was created with")
	}
	if env["DATA_SOURCE_NAME"] != "" {
		t.Error("DATA_SOURCE_NAME is set: it wins over DATA_SOURCE_URI, USER and PASS")
	}
}

// Staging's Redis has a maxmemory below its container's limit, so that
// ParleyRedisMemoryNearMax has something to measure against and Redis
// refuses writes before the kernel kills it, and never evicts (Parley keeps
// nothing there that eviction could free).
func TestStagingRedisHasAMaxmemoryBelowItsLimit(t *testing.T) {
	t.Parallel()
	c := stagingDatastores(t, rendered(t, staging))[1].container
	arg := func(name string) string {
		if i := slices.Index(c.Args, name); i >= 0 && i+1 < len(c.Args) {
			return c.Args[i+1]
		}
		return ""
	}
	m := regexp.MustCompile(`^(\d+)mb$`).FindStringSubmatch(arg("--maxmemory"))
	if m == nil {
		t.Fatalf("redis --maxmemory is %q, want a size in mb", arg("--maxmemory"))
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	limit := c.Resources.Limits.Memory().Value()
	if n<<20 > limit*8/10 {
		t.Errorf("redis --maxmemory %s is over 80%% of its memory limit %d", m[0], limit)
	}
	if got := arg("--maxmemory-policy"); got != "noeviction" {
		t.Errorf("redis --maxmemory-policy is %q, want noeviction", got)
	}
}
