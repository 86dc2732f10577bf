package k8s

import (
	"net/netip"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// endpoint is one end of a connection as NetworkPolicies see it: a pod
// (namespace and labels, and the ports its containers name), or an address
// outside the cluster.
type endpoint struct {
	namespace string
	labels    map[string]string
	ports     []corev1.ContainerPort
	ip        string // outside the cluster; namespace and labels unset
}

func pod(namespace string, podLabels map[string]string, ports ...corev1.ContainerPort) endpoint {
	return endpoint{namespace: namespace, labels: podLabels, ports: ports}
}

func outside(ip string) endpoint { return endpoint{ip: ip} }

// allows evaluates policies, as the NetworkPolicy API defines them, for a
// connection from src to port/proto of dst: a direction is open unless a
// policy selecting the pod isolates it, and then only what one of those
// policies' rules admits passes. Namespaces are labelled as Kubernetes
// labels them, with kubernetes.io/metadata.name alone. Both directions must
// allow a connection between two pods.
func allows(t *testing.T, policies []*networkingv1.NetworkPolicy, src, dst endpoint, port int32, proto corev1.Protocol) bool {
	t.Helper()
	if dst.ip == "" && !direction(t, policies, dst, src, port, proto, networkingv1.PolicyTypeIngress) {
		return false
	}
	return src.ip != "" || direction(t, policies, src, dst, port, proto, networkingv1.PolicyTypeEgress)
}

// direction says whether the policies selecting self let it exchange with
// peer (ingress: from peer to self's port; egress: from self to peer's).
func direction(t *testing.T, policies []*networkingv1.NetworkPolicy, self, peer endpoint, port int32, proto corev1.Protocol, kind networkingv1.PolicyType) bool {
	t.Helper()
	target := self
	if kind == networkingv1.PolicyTypeEgress {
		target = peer
	}
	isolated := false
	for _, p := range policies {
		if p.Namespace != self.namespace || !matches(t, &p.Spec.PodSelector, self.labels, true) || !hasType(p, kind) {
			continue
		}
		isolated = true
		if kind == networkingv1.PolicyTypeIngress {
			for _, r := range p.Spec.Ingress {
				if peersAdmit(t, p, r.From, peer) && portsAdmit(t, r.Ports, target, port, proto) {
					return true
				}
			}
		} else {
			for _, r := range p.Spec.Egress {
				if peersAdmit(t, p, r.To, peer) && portsAdmit(t, r.Ports, target, port, proto) {
					return true
				}
			}
		}
	}
	return !isolated
}

// hasType applies the API's default: Ingress always, Egress when the
// policy has egress rules.
func hasType(p *networkingv1.NetworkPolicy, kind networkingv1.PolicyType) bool {
	if len(p.Spec.PolicyTypes) == 0 {
		return kind == networkingv1.PolicyTypeIngress || len(p.Spec.Egress) > 0
	}
	for _, pt := range p.Spec.PolicyTypes {
		if pt == kind {
			return true
		}
	}
	return false
}

func matches(t *testing.T, sel *metav1.LabelSelector, set map[string]string, emptyMatchesAll bool) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("selector %v: %v", sel, err)
	}
	if s.Empty() {
		return emptyMatchesAll
	}
	return s.Matches(labels.Set(set))
}

func peersAdmit(t *testing.T, p *networkingv1.NetworkPolicy, peers []networkingv1.NetworkPolicyPeer, e endpoint) bool {
	t.Helper()
	if len(peers) == 0 {
		return true
	}
	for _, peer := range peers {
		switch {
		case peer.IPBlock != nil:
			// An ipBlock is for addresses outside the cluster; whether
			// it also matches pod addresses is up to the network
			// plugin, so no pod relies on it here.
			if e.ip != "" && inBlock(t, peer.IPBlock, e.ip) {
				return true
			}
		case e.ip != "":
		case peer.NamespaceSelector != nil:
			ns := map[string]string{"kubernetes.io/metadata.name": e.namespace}
			if matches(t, peer.NamespaceSelector, ns, true) &&
				(peer.PodSelector == nil || matches(t, peer.PodSelector, e.labels, true)) {
				return true
			}
		case peer.PodSelector != nil:
			if e.namespace == p.Namespace && matches(t, peer.PodSelector, e.labels, true) {
				return true
			}
		}
	}
	return false
}

func inBlock(t *testing.T, b *networkingv1.IPBlock, ip string) bool {
	t.Helper()
	addr := netip.MustParseAddr(ip)
	prefix, err := netip.ParsePrefix(b.CIDR)
	if err != nil {
		t.Fatalf("ipBlock %s: %v", b.CIDR, err)
	}
	if !prefix.Contains(addr) {
		return false
	}
	for _, ex := range b.Except {
		if p, err := netip.ParsePrefix(ex); err == nil && p.Contains(addr) {
			return false
		}
	}
	return true
}

// portsAdmit matches a rule's ports against the target's port; a named
// port is looked up among the target pod's container ports.
func portsAdmit(t *testing.T, ports []networkingv1.NetworkPolicyPort, target endpoint, port int32, proto corev1.Protocol) bool {
	t.Helper()
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		want := corev1.ProtocolTCP
		if p.Protocol != nil {
			want = *p.Protocol
		}
		if want != proto {
			continue
		}
		if p.Port == nil {
			return true
		}
		if p.Port.Type == intstr.String {
			for _, cp := range target.ports {
				if cp.Name == p.Port.StrVal && cp.ContainerPort == port {
					return true
				}
			}
			continue
		}
		end := p.Port.IntVal
		if p.EndPort != nil {
			end = *p.EndPort
		}
		if port >= p.Port.IntVal && port <= end {
			return true
		}
	}
	return false
}

// connection is a case of TestNetworkPoliciesAdmitOnlyWhatTheServerNeeds.
type connection struct {
	name     string
	src, dst endpoint
	port     int32
	proto    corev1.Protocol
	want     bool
}

// Who may talk to whom, in each environment.
func TestNetworkPoliciesAdmitOnlyWhatTheServerNeeds(t *testing.T) {
	t.Parallel()
	ingressController := map[string]string{"app.kubernetes.io/name": "ingress-nginx"}
	prometheus := map[string]string{"app.kubernetes.io/name": "prometheus"}
	collector := map[string]string{"app.kubernetes.io/name": "otel-collector"}
	dns := map[string]string{"k8s-app": "kube-dns"}
	stranger := map[string]string{"app": "something-else"}
	loadtest := map[string]string{"app.kubernetes.io/name": "parley-loadtest"}
	const internet = "203.0.113.10"

	for _, dir := range withServer {
		m := rendered(t, dir)
		ns := metaOf(serverDeployment(t, m)).GetNamespace()
		d := serverDeployment(t, m)
		server := pod(ns, d.Spec.Template.Labels, serverContainer(t, d).Ports...)
		policies := all[*networkingv1.NetworkPolicy](m)
		tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP

		cases := []connection{
			{"the ingress controller reaches the API", pod("ingress-nginx", ingressController), server, httpPort, tcp, true},
			{"the ingress controller cannot reach the admin port", pod("ingress-nginx", ingressController), server, adminPort, tcp, false},
			{"Prometheus scrapes the admin port", pod("monitoring", prometheus), server, adminPort, tcp, true},
			{"another namespace cannot reach the API", pod("default", stranger), server, httpPort, tcp, false},
			{"another pod of the namespace cannot reach the API", pod(ns, stranger), server, httpPort, tcp, false},
			{"another pod of the namespace cannot reach the admin port", pod(ns, stranger), server, adminPort, tcp, false},
			{"nothing reaches an unlisted pod", pod("ingress-nginx", ingressController), pod(ns, stranger), httpPort, tcp, false},
			{"the server resolves names over UDP", server, pod("kube-system", dns), 53, udp, true},
			{"the server resolves names over TCP", server, pod("kube-system", dns), 53, tcp, true},
			{"the server reaches an external PostgreSQL", server, outside(internet), 5432, tcp, true},
			{"the server reaches an external Redis", server, outside(internet), 6379, tcp, true},
			{"the server reaches Sentry", server, outside(internet), 443, tcp, true},
			{"the server sends spans to the collector", server, pod("monitoring", collector), 4317, tcp, true},
			{"the server cannot reach Prometheus", server, pod("monitoring", prometheus), 9090, tcp, false},
			{"the server cannot open SSH anywhere", server, outside(internet), 22, tcp, false},
		}
		if dir == staging {
			postgres := named[*appsv1.StatefulSet](t, m, "postgres")
			redis := named[*appsv1.Deployment](t, m, "redis")
			pg := pod(ns, postgres.Spec.Template.Labels)
			rd := pod(ns, redis.Spec.Template.Labels)
			cases = append(cases, []connection{
				{"the server reaches PostgreSQL", server, pg, 5432, tcp, true},
				{"the server reaches Redis", server, rd, 6379, tcp, true},
				{"another pod cannot reach PostgreSQL", pod(ns, stranger), pg, 5432, tcp, false},
				{"the load generator cannot reach Redis", pod(ns, loadtest), rd, 6379, tcp, false},
				{"the load generator reaches the API", pod(ns, loadtest), server, httpPort, tcp, true},
				{"the load generator cannot reach the admin port", pod(ns, loadtest), server, adminPort, tcp, false},
			}...)
		} else {
			cases = append(cases, connection{"no load generator reaches the API", pod(ns, loadtest), server, httpPort, tcp, false})
		}
		alertmanager := pod(ns, map[string]string{"app.kubernetes.io/name": "alertmanager", "alertmanager": "parley"})
		cases = append(cases, []connection{
			{"Prometheus sends alerts to Alertmanager", pod("monitoring", prometheus), alertmanager, 9093, tcp, true},
			{"Alertmanagers gossip", alertmanager, alertmanager, 9094, udp, true},
			{"the ingress controller cannot reach Alertmanager", pod("ingress-nginx", ingressController), alertmanager, 9093, tcp, false},
		}...)
		for _, c := range cases {
			if got := allows(t, policies, c.src, c.dst, c.port, c.proto); got != c.want {
				t.Errorf("%s: %s: allowed %v, want %v", dir, c.name, got, c.want)
			}
		}
	}
}
