// Package k8s holds Parley's Kubernetes manifests (see README.md) and, in its
// tests, what they promise: every kustomization renders with kustomize's own
// library, every object decodes strictly into the Kubernetes and
// prometheus-operator types, and the rendered objects keep the promises the
// README makes (probes, drain, restricted pods, autoscaling, network
// policies, and the alerts and dashboards matching alerts/ and dashboards/).
// No Go code ships from here; k8sgen is the command that generates
// base/generated/.
package k8s
