package kube

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// ServiceAccountDir is where the kubelet mounts a pod's service account:
// its token, the cluster's CA certificate and the pod's namespace.
const ServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// InCluster is the API as the pod's own service account reaches it from
// inside the cluster: at the address the kubelet puts in
// KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT, with the token,
// CA and namespace in dir (ServiceAccountDir in a pod). A Deployment named
// without a namespace is in the pod's.
func InCluster(getenv func(string) string, dir string) (*API, error) {
	host, port := getenv("KUBERNETES_SERVICE_HOST"), getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, errors.New("not in a Kubernetes pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set")
	}
	caFile := filepath.Join(dir, "ca.crt")
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	roots, err := certPool(pem, caFile)
	if err != nil {
		return nil, err
	}
	token := fileToken(filepath.Join(dir, "token"))
	if _, err := token(); err != nil {
		return nil, fmt.Errorf("service account token: %w", err)
	}
	// The namespace file is always there in a pod; without it a
	// Deployment must be named with its namespace.
	namespace, _ := os.ReadFile(filepath.Join(dir, "namespace"))
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	return newAPI("https://"+net.JoinHostPort(host, port), tlsConfig, nil, token, strings.TrimSpace(string(namespace))), nil
}
