package main

import (
	"context"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// replicaSource says how many replicas of the deployment are ready.
type replicaSource func(ctx context.Context) (float64, error)

// kubeReplicas reads a Deployment's ready replicas from the Kubernetes API,
// as the kubeconfig at path reaches it: what the HorizontalPodAutoscaler
// actually achieved, rather than what Prometheus has scraped.
func kubeReplicas(path, deployment string) (replicaSource, error) {
	namespace, name, ok := strings.Cut(deployment, "/")
	if !ok || namespace == "" || name == "" {
		return nil, fmt.Errorf("-deployment must be namespace/name, got %q", deployment)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("-kubeconfig: %w", err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("-kubeconfig: %w", err)
	}
	return func(ctx context.Context) (float64, error) {
		d, err := client.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return 0, err
		}
		return float64(d.Status.ReadyReplicas), nil
	}, nil
}

// promReplicas reads the replica count from a Prometheus query.
func promReplicas(prom, query string) replicaSource {
	return func(ctx context.Context) (float64, error) { return promScalar(ctx, prom, query) }
}
