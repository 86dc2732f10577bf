package main

import (
	"fmt"

	"github.com/parleychat/parley/loadtest/kube"
)

// kubeDeployment is the Deployment the autoscale check watches, reached
// through the kubeconfig at path if there is one, else as the pod's own
// service account.
func kubeDeployment(ref, kubeconfig string, getenv func(string) string) (*kube.Deployment, error) {
	var (
		api *kube.API
		err error
	)
	if kubeconfig != "" {
		if api, err = kube.LoadKubeconfig(kubeconfig); err != nil {
			return nil, fmt.Errorf("-kubeconfig: %w", err)
		}
	} else if api, err = kube.InCluster(getenv, kube.ServiceAccountDir); err != nil {
		return nil, fmt.Errorf("-deployment without -kubeconfig reads the Kubernetes API as the pod's service account: %w", err)
	}
	d, err := api.Deployment(ref)
	if err != nil {
		return nil, fmt.Errorf("-deployment: %w", err)
	}
	return d, nil
}
