package k8s

import (
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
)

// alertmanagerPodLabels are the labels the prometheus-operator gives the
// pods of the Alertmanager resource "parley" (base/alertmanager.yaml): the
// manifests never write that pod template, the operator does.
var alertmanagerPodLabels = map[string]string{
	"app.kubernetes.io/name":       "alertmanager",
	"app.kubernetes.io/instance":   "parley",
	"app.kubernetes.io/managed-by": "prometheus-operator",
	"alertmanager":                 "parley",
}

// Alertmanager is scraped as job="alertmanager" in every environment, so
// that the alert on its failed notifications (a broken Slack webhook) can
// fire there, and nothing else is scraped by that PodMonitor.
func TestAlertmanagerIsScrapedAsItsJob(t *testing.T) {
	t.Parallel()
	for _, env := range []string{staging, production} {
		t.Run(env, func(t *testing.T) {
			m := rendered(t, env)
			pm := named[*monitoringv1.PodMonitor](t, m, "alertmanager")
			if !selects(t, &pm.Spec.Selector, alertmanagerPodLabels) {
				t.Fatalf("PodMonitor %s does not select Alertmanager's pods (%v)", pm.Name, alertmanagerPodLabels)
			}
			for _, p := range podTemplates(m) {
				if selects(t, &pm.Spec.Selector, p.labels) {
					t.Errorf("PodMonitor %s also selects %s", pm.Name, p.owner)
				}
			}
			if job := alertmanagerPodLabels[pm.Spec.JobLabel]; job != "alertmanager" {
				t.Errorf("PodMonitor %s gives job %q (jobLabel %q), want alertmanager", pm.Name, job, pm.Spec.JobLabel)
			}
			if n := len(pm.Spec.PodMetricsEndpoints); n != 1 || pm.Spec.PodMetricsEndpoints[0].Port == nil || *pm.Spec.PodMetricsEndpoints[0].Port != "web" {
				t.Errorf("PodMonitor %s scrapes %+v, want the one port web", pm.Name, pm.Spec.PodMetricsEndpoints)
			}
		})
	}
}
