// Package kube reads a Deployment's status from the Kubernetes API with a
// plain HTTPS GET. The autoscale check makes that one call; client-go
// would bring some 280 packages into the load generator for it.
//
// The API is reached as a pod's own service account from inside the
// cluster (InCluster), or as a kubeconfig file's current context says
// (LoadKubeconfig).
package kube

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// API is the Kubernetes API server as one identity reaches it.
type API struct {
	server    string                 // https://host:port
	client    *http.Client           // trusts the cluster's CA, presents the identity's certificate if it has one
	token     func() (string, error) // the bearer token, "" for none
	namespace string                 // where a Deployment named without one lives
}

// requestTimeout bounds each call: the check polls every second, and a
// call that hangs must not hold up the next look.
const requestTimeout = 10 * time.Second

func newAPI(server string, tlsConfig *tls.Config, proxy *url.URL, token func() (string, error), namespace string) *API {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = tlsConfig
	if proxy != nil {
		t.Proxy = http.ProxyURL(proxy)
	}
	return &API{
		server:    strings.TrimSuffix(server, "/"),
		client:    &http.Client{Timeout: requestTimeout, Transport: t},
		token:     token,
		namespace: namespace,
	}
}

// fileToken reads the bearer token from path at every call: a service
// account's token is rotated by the kubelet while the check runs.
func fileToken(path string) func() (string, error) {
	return func() (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		return strings.TrimSpace(string(b)), nil
	}
}

// certPool is a pool of the PEM certificates in pem alone: the cluster's
// own CA signs its API server's certificate, so the system's roots have no
// say.
func certPool(pem []byte, source string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", source)
	}
	return pool, nil
}

// Deployment is one Deployment the API serves.
type Deployment struct {
	api             *API
	namespace, name string
}

// Deployment names a Deployment as namespace/name, or by its name alone
// in the API's own namespace (the pod's, or the kubeconfig context's).
func (a *API) Deployment(ref string) (*Deployment, error) {
	namespace, name, qualified := strings.Cut(ref, "/")
	if !qualified {
		namespace, name = a.namespace, ref
	}
	if namespace == "" || name == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("deployment %q: want namespace/name (or a name, with a namespace to put it in)", ref)
	}
	return &Deployment{api: a, namespace: namespace, name: name}, nil
}

// String is the Deployment as namespace/name.
func (d *Deployment) String() string { return d.namespace + "/" + d.name }

// ReadyReplicas is how many of the Deployment's pods are ready, from its
// status: what the HorizontalPodAutoscaler actually achieved, rather than
// what Prometheus has scraped.
func (d *Deployment) ReadyReplicas(ctx context.Context) (int, error) {
	var deployment struct {
		Kind   string `json:"kind"`
		Status struct {
			// The API leaves it out when no pod is ready.
			ReadyReplicas int `json:"readyReplicas"`
		} `json:"status"`
	}
	path := "/apis/apps/v1/namespaces/" + url.PathEscape(d.namespace) + "/deployments/" + url.PathEscape(d.name)
	if err := d.api.get(ctx, path, &deployment); err != nil {
		return 0, err
	}
	if deployment.Kind != "Deployment" {
		return 0, fmt.Errorf("GET %s: got a %q, want a Deployment", path, deployment.Kind)
	}
	return deployment.Status.ReadyReplicas, nil
}

// get GETs path as the API's identity and decodes the JSON answer into
// out. An error answer is the API's Status object, whose message says
// what went wrong (forbidden to whom, not found where).
func (a *API) get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.server+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	token, err := a.token()
	if err != nil {
		return fmt.Errorf("bearer token: %w", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var status struct{ Message string }
		if json.Unmarshal(body, &status) != nil || status.Message == "" {
			status.Message = strings.TrimSpace(string(body))
		}
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, status.Message)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return nil
}
