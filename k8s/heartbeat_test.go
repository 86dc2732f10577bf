package k8s

import (
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	yamlv3 "go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// The Watchdog's address in alertmanager.yml is real in every environment:
// a Service of the overlay (Alertmanager's namespace) by that name and
// port, leading to the heartbeat's pods on the port they listen on, which
// Alertmanager may reach and nothing else; the heartbeat pages through the
// Secret key Alertmanager's pages receiver reads, and expects the
// Watchdog less often than Alertmanager repeats it.
func TestTheWatchdogReachesTheHeartbeat(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(alertsDir, "alertmanager.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var am struct {
		Route struct {
			Routes []struct {
				Receiver       string
				GroupInterval  string `yaml:"group_interval"`
				RepeatInterval string `yaml:"repeat_interval"`
			}
		}
		Receivers []struct {
			Name         string
			SlackConfigs []struct {
				APIURLFile string `yaml:"api_url_file"`
			} `yaml:"slack_configs"`
			WebhookConfigs []struct{ URL string } `yaml:"webhook_configs"`
		}
	}
	if err := yamlv3.Unmarshal(raw, &am); err != nil {
		t.Fatal(err)
	}
	var watchdogURL, pagesKey string
	for _, r := range am.Receivers {
		if r.Name == "heartbeat" && len(r.WebhookConfigs) == 1 {
			watchdogURL = r.WebhookConfigs[0].URL
		}
		if r.Name == "slack-pages" && len(r.SlackConfigs) == 1 {
			pagesKey = filepath.Base(r.SlackConfigs[0].APIURLFile)
		}
	}
	u, err := url.Parse(watchdogURL)
	if err != nil || u.Hostname() == "" || strings.Contains(u.Hostname(), ".") {
		t.Fatalf("the Watchdog goes to %q, want a Service of Alertmanager's namespace by its short name", watchdogURL)
	}
	port, _ := strconv.Atoi(u.Port())

	for _, dir := range overlays {
		t.Run(dir, func(t *testing.T) {
			m := rendered(t, dir)
			svc := named[*corev1.Service](t, m, u.Hostname())
			i := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return int(p.Port) == port })
			if i < 0 {
				t.Fatalf("Service %s has no port %d", svc.Name, port)
			}
			d := named[*appsv1.Deployment](t, m, "heartbeat")
			for k, v := range svc.Spec.Selector {
				if d.Spec.Template.Labels[k] != v {
					t.Errorf("Service %s selects %s=%s, which the heartbeat's pods lack", svc.Name, k, v)
				}
			}
			c := d.Spec.Template.Spec.Containers[0]
			target := svc.Spec.Ports[i].TargetPort
			j := slices.IndexFunc(c.Ports, func(p corev1.ContainerPort) bool {
				return p.Name == target.StrVal || p.ContainerPort == target.IntVal
			})
			if j < 0 || !slices.Contains(c.Args, "-addr=:"+strconv.Itoa(int(c.Ports[j].ContainerPort))) {
				t.Errorf("the Service leads to %v, the heartbeat listens on %v", target, c.Args)
			}
			if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
				t.Error("the heartbeat must run as one replica: two would page twice")
			}

			// Its alarm goes through the pages webhook.
			var file string
			var period time.Duration
			for _, a := range c.Args {
				if v, ok := strings.CutPrefix(a, "-webhook-file="); ok {
					file = v
				}
				if v, ok := strings.CutPrefix(a, "-expect-every="); ok {
					period, _ = time.ParseDuration(v)
				}
			}
			var mounted bool
			for _, vm := range c.VolumeMounts {
				if filepath.Dir(file) != vm.MountPath {
					continue
				}
				for _, v := range d.Spec.Template.Spec.Volumes {
					if v.Name != vm.Name || v.Secret == nil || v.Secret.SecretName != "slack-webhook" {
						continue
					}
					for _, item := range v.Secret.Items {
						mounted = mounted || (item.Key == pagesKey && item.Path == filepath.Base(file))
					}
				}
			}
			if !mounted {
				t.Errorf("-webhook-file=%s is not the Secret slack-webhook's key %s, the pages webhook", file, pagesKey)
			}
			secret := secretData(named[*corev1.Secret](t, m, "slack-webhook"))
			if secret[pagesKey] == "" {
				t.Errorf("Secret slack-webhook has no %s", pagesKey)
			}
			routed := false
			for _, r := range am.Route.Routes {
				if r.Receiver != "heartbeat" {
					continue
				}
				routed = true
				group, err1 := time.ParseDuration(r.GroupInterval)
				repeat, err2 := time.ParseDuration(r.RepeatInterval)
				if err1 != nil || err2 != nil {
					t.Fatalf("the Watchdog route's intervals: %v %v", err1, err2)
				}
				if period < 3*(group+repeat) {
					t.Errorf("the heartbeat expects the Watchdog every %v; Alertmanager may send it only every %v: want three chances", period, group+repeat)
				}
			}
			if !routed {
				t.Error("no route sends the Watchdog to the heartbeat")
			}

			// Alertmanager reaches it; nothing else does.
			policies := all[*networkingv1.NetworkPolicy](m)
			ns := metaOf(d).GetNamespace()
			heartbeat := pod(ns, d.Spec.Template.Labels, c.Ports...)
			alertmanager := pod(ns, map[string]string{"app.kubernetes.io/name": "alertmanager", "alertmanager": "parley"})
			server := pod(ns, serverDeployment(t, m).Spec.Template.Labels)
			for _, tc := range []connection{
				{"Alertmanager sends the Watchdog", alertmanager, heartbeat, int32(port), corev1.ProtocolTCP, true},
				{"the server cannot reach the heartbeat", server, heartbeat, int32(port), corev1.ProtocolTCP, false},
				{"Prometheus's namespace cannot reach the heartbeat", pod("monitoring", map[string]string{"app.kubernetes.io/name": "prometheus"}), heartbeat, int32(port), corev1.ProtocolTCP, false},
				{"the heartbeat reaches Slack", heartbeat, outside("203.0.113.10"), 443, corev1.ProtocolTCP, true},
			} {
				if got := allows(t, policies, tc.src, tc.dst, tc.port, tc.proto); got != tc.want {
					t.Errorf("%s: allowed %v, want %v", tc.name, got, tc.want)
				}
			}
		})
	}
}
