package k8s

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
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

// The canary reaches the public entry point as a user does (the ingress
// controller's pods, or the load balancer's address outside the cluster)
// and not the server's pods, Prometheus scrapes it, and nobody else
// reaches it.
func TestCanaryReachesTheEntryPointAndIsScraped(t *testing.T) {
	t.Parallel()
	ingressController := pod("ingress-nginx", map[string]string{"app.kubernetes.io/name": "ingress-nginx"})
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
			{"the canary reaches the ingress controller over TLS", canary, ingressController, 443, tcp, true},
			{"the canary reaches a load balancer outside the cluster over TLS", canary, outside(internet), 443, tcp, true},
			{"the canary does not bypass the entry point to the API", canary, server, httpPort, tcp, false},
			{"the canary cannot reach the admin port", canary, server, adminPort, tcp, false},
			{"the canary resolves names", canary, pod("kube-system", dns), 53, udp, true},
			{"the canary sends spans to the collector", canary, pod("monitoring", collector), 4317, tcp, true},
			{"the canary cannot reach the internet but over TLS", canary, outside(internet), 80, tcp, false},
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

// canaryTarget returns the canary's -target.
func canaryTarget(t *testing.T, m *manifest) string {
	t.Helper()
	c := named[*appsv1.Deployment](t, m, canaryName).Spec.Template.Spec.Containers[0]
	var target string
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "-target="); ok {
			if target != "" {
				t.Fatalf("%s: the canary has -target twice", m.dir)
			}
			target = v
		}
	}
	if target == "" {
		t.Fatalf("%s: the canary has no -target (args %q)", m.dir, c.Args)
	}
	return target
}

// In every environment the canary probes the public URL its users have:
// https and the host that environment's Ingress serves (and holds a
// certificate for), the host that leads to the server's Service.
func TestCanaryTargetsTheEnvironmentsPublicIngress(t *testing.T) {
	t.Parallel()
	for _, dir := range withServer {
		t.Run(dir, func(t *testing.T) {
			m := rendered(t, dir)
			ing := named[*networkingv1.Ingress](t, m, "parley")
			if len(ing.Spec.Rules) != 1 || len(ing.Spec.TLS) != 1 {
				t.Fatalf("the Ingress has %d rules and %d TLS entries, want one of each", len(ing.Spec.Rules), len(ing.Spec.TLS))
			}
			host := ing.Spec.Rules[0].Host
			if !slices.Contains(ing.Spec.TLS[0].Hosts, host) {
				t.Errorf("the Ingress serves %s but its certificate is for %v", host, ing.Spec.TLS[0].Hosts)
			}
			d := serverDeployment(t, m)
			if r := ing.Spec.Rules[0].HTTP; r == nil || len(r.Paths) == 0 || r.Paths[0].Path != "/" || r.Paths[0].Backend.Service == nil {
				t.Errorf("the Ingress's host does not lead all its paths to a Service")
			} else if b := r.Paths[0].Backend.Service; servicePortTarget(t, named[*corev1.Service](t, m, b.Name), serverContainer(t, d), b.Port) != httpPort {
				t.Errorf("the Ingress's host leads to Service %s, not the server's API", b.Name)
			}
			target := canaryTarget(t, m)
			u, err := url.Parse(target)
			if err != nil {
				t.Fatalf("-target %q: %v", target, err)
			}
			if want := "https://" + host; target != want || u.Host != host {
				t.Errorf("the canary probes %s, want the public URL %s", target, want)
			}
		})
	}
	// The overlays' hosts are their own, not the base's example.
	if canaryTarget(t, rendered(t, staging)) == canaryTarget(t, rendered(t, production)) {
		t.Errorf("staging and production canaries both probe %s", canaryTarget(t, rendered(t, staging)))
	}
}

// On CI's kind cluster (k8s/kind: no ingress controller, and staging's
// host does not resolve) the canary probes the server's Service and the
// policies let it, through the API port alone.
func TestKindCanaryProbesTheServiceItCanReach(t *testing.T) {
	t.Parallel()
	m := rendered(t, onKind)
	svc := named[*corev1.Service](t, m, "parley")
	d := serverDeployment(t, m)
	port := svc.Spec.Ports[0]
	for _, p := range svc.Spec.Ports {
		if p.Name == "http" {
			port = p
		}
	}
	if want := fmt.Sprintf("http://%s:%d", svc.Name, port.Port); canaryTarget(t, m) != want {
		t.Errorf("the canary probes %s, want the server's Service %s", canaryTarget(t, m), want)
	}
	if got := servicePortTarget(t, svc, serverContainer(t, d), networkingv1.ServiceBackendPort{Number: port.Port}); got != httpPort {
		t.Errorf("the Service's port %d leads to container port %d, want the API's %d", port.Port, got, httpPort)
	}
	cd := named[*appsv1.Deployment](t, m, canaryName)
	canary := pod(d.Namespace, cd.Spec.Template.Labels)
	server := pod(d.Namespace, d.Spec.Template.Labels, serverContainer(t, d).Ports...)
	policies := all[*networkingv1.NetworkPolicy](m)
	tcp := corev1.ProtocolTCP
	for _, c := range []connection{
		{"the canary reaches the API", canary, server, httpPort, tcp, true},
		{"the canary cannot reach the admin port", canary, server, adminPort, tcp, false},
		{"another pod still cannot reach the API", pod(d.Namespace, map[string]string{"app": "something-else"}), server, httpPort, tcp, false},
	} {
		if got := allows(t, policies, c.src, c.dst, c.port, c.proto); got != c.want {
			t.Errorf("%s: allowed %v, want %v", c.name, got, c.want)
		}
	}
	// Nothing else differs from staging.
	if got, want := len(m.objects), len(rendered(t, staging).objects)+2; got != want {
		t.Errorf("%d objects, want staging's and the two policies: %d", got, want)
	}
}
