package k8s

import (
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The canary's names, as its alerts, SLO and dashboards know them.
const (
	canaryName = "parley-canary"
	canaryPort = 9103
	canaryJob  = "canary"
)

// The canary reaches the server's API as a user does and nothing else of
// it, Prometheus scrapes it, and nobody else reaches it.
func TestCanaryReachesTheAPIAndIsScraped(t *testing.T) {
	t.Parallel()
	prometheus := map[string]string{"app.kubernetes.io/name": "prometheus"}
	collector := map[string]string{"app.kubernetes.io/name": "otel-collector"}
	dns := map[string]string{"k8s-app": "kube-dns"}
	stranger := map[string]string{"app": "something-else"}
	const internet = "203.0.113.10"
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	for _, dir := range withServer {
		m := rendered(t, dir)
		d := serverDeployment(t, m)
		ns := d.Namespace
		server := pod(ns, d.Spec.Template.Labels, serverContainer(t, d).Ports...)
		cd := named[*appsv1.Deployment](t, m, canaryName)
		canary := pod(ns, cd.Spec.Template.Labels, cd.Spec.Template.Spec.Containers[0].Ports...)
		policies := all[*networkingv1.NetworkPolicy](m)
		for _, c := range []connection{
			{"the canary reaches the API", canary, server, httpPort, tcp, true},
			{"the canary cannot reach the admin port", canary, server, adminPort, tcp, false},
			{"the canary resolves names", canary, pod("kube-system", dns), 53, udp, true},
			{"the canary sends spans to the collector", canary, pod("monitoring", collector), 4317, tcp, true},
			{"the canary cannot reach the internet", canary, outside(internet), 443, tcp, false},
			{"the canary cannot reach PostgreSQL", canary, outside(internet), 5432, tcp, false},
			{"Prometheus scrapes the canary", pod("monitoring", prometheus), canary, canaryPort, tcp, true},
			{"another pod cannot reach the canary", pod(ns, stranger), canary, canaryPort, tcp, false},
			{"another pod still cannot reach the API", pod(ns, stranger), server, httpPort, tcp, false},
		} {
			if got := allows(t, policies, c.src, c.dst, c.port, c.proto); got != c.want {
				t.Errorf("%s: %s: allowed %v, want %v", dir, c.name, got, c.want)
			}
		}
	}
}

// Prometheus scrapes the canary's metrics port as job canary, the job its
// alerts select, and the canary reads its password from the Secret.
func TestCanaryIsScrapedAsJobCanaryAndSignsInFromTheSecret(t *testing.T) {
	t.Parallel()
	for _, dir := range withServer {
		t.Run(dir, func(t *testing.T) {
			m := rendered(t, dir)
			d := named[*appsv1.Deployment](t, m, canaryName)
			if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
				t.Errorf("runs %v canaries, want 1", d.Spec.Replicas)
			}
			c := d.Spec.Template.Spec.Containers[0]
			sm := named[*monitoringv1.ServiceMonitor](t, m, canaryName)
			var svc *corev1.Service
			for _, s := range all[*corev1.Service](m) {
				if selects(t, &sm.Spec.Selector, s.Labels) {
					if svc != nil {
						t.Fatalf("the canary's ServiceMonitor selects %s and %s", svc.Name, s.Name)
					}
					svc = s
				}
			}
			if svc == nil || !selects(t, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector}, d.Spec.Template.Labels) {
				t.Fatal("no Service selected by the canary's ServiceMonitor leads to the canary's pods")
			}
			if job := svc.Labels[sm.Spec.JobLabel]; sm.Spec.JobLabel == "" || job != canaryJob {
				t.Errorf("scraped as job %q (jobLabel %q), want %s", job, sm.Spec.JobLabel, canaryJob)
			}
			for _, ep := range sm.Spec.Endpoints {
				if got := servicePortTarget(t, svc, c, networkingv1.ServiceBackendPort{Name: ep.Port}); got != canaryPort {
					t.Errorf("scrapes container port %d, want %d", got, canaryPort)
				}
			}
			if dir != base {
				env := environment(t, m, c)
				if len(env["CANARY_PASSWORD"]) < 8 {
					t.Errorf("CANARY_PASSWORD from the Secret has %d characters, want 8 or more", len(env["CANARY_PASSWORD"]))
				}
				if !pinned(c.Image) {
					t.Errorf("image %q is not pinned", c.Image)
				}
			}
		})
	}
}
