package kube

import (
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// serviceAccount writes what the kubelet mounts for a pod (token, CA,
// namespace) into a directory, and returns the directory and the
// environment the kubelet gives the pod.
func serviceAccount(t *testing.T, api *apiServer, token, namespace string) (dir string, env map[string]string) {
	t.Helper()
	dir = t.TempDir()
	writeFile(t, filepath.Join(dir, "token"), token)
	writeFile(t, filepath.Join(dir, "ca.crt"), string(api.caPEM()))
	writeFile(t, filepath.Join(dir, "namespace"), namespace)
	u, err := url.Parse(api.URL)
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(u.Host)
	return dir, map[string]string{"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// In a pod, the check reads the Deployment as the pod's service account:
// the token and CA the kubelet mounts, the API server's address from the
// environment, a bare name in the pod's namespace. The kubelet rotates the
// token while the check runs, so it is read again at every call.
func TestInClusterReadsTheDeploymentAsTheServiceAccount(t *testing.T) {
	t.Parallel()
	api := newAPIServer(t, "parley-staging", "parley", "first-token", nil)
	dir, env := serviceAccount(t, api, "first-token\n", "parley-staging\n")
	cluster, err := InCluster(func(k string) string { return env[k] }, dir)
	if err != nil {
		t.Fatal(err)
	}
	d, err := cluster.Deployment("parley")
	if err != nil || d.String() != "parley-staging/parley" {
		t.Fatalf("got %v, %v; want parley-staging/parley, the pod's namespace", d, err)
	}
	if n, err := d.ReadyReplicas(t.Context()); err != nil || n != 2 {
		t.Fatalf("got %d, %v; want 2 ready replicas", n, err)
	}

	api.set("second-token", 4) // rotated: the old token is refused
	if _, err := d.ReadyReplicas(t.Context()); err == nil || !strings.Contains(err.Error(), "401 Unauthorized") {
		t.Fatalf("with the old token: got %v, want the API's 401", err)
	}
	writeFile(t, filepath.Join(dir, "token"), "second-token\n")
	if n, err := d.ReadyReplicas(t.Context()); err != nil || n != 4 {
		t.Fatalf("after the kubelet rotated the token: got %d, %v; want 4 ready replicas", n, err)
	}
}

func TestInClusterRefusesWhatIsNotAPod(t *testing.T) {
	t.Parallel()
	api := newAPIServer(t, "parley-staging", "parley", "token", nil)
	dir, env := serviceAccount(t, api, "token", "parley-staging")
	noCA := t.TempDir()
	writeFile(t, filepath.Join(noCA, "token"), "token")
	noToken := t.TempDir()
	writeFile(t, filepath.Join(noToken, "ca.crt"), string(api.caPEM()))
	tests := []struct {
		name string
		env  map[string]string
		dir  string
		want string
	}{
		{"no service environment", map[string]string{}, dir, "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set"},
		{"no CA", env, noCA, "ca.crt"},
		{"no token", env, noToken, "service account token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := InCluster(func(k string) string { return tt.env[k] }, tt.dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// An error answer carries the API's own message, which names what is
// wrong.
func TestAPIErrorsCarryTheAPIsMessage(t *testing.T) {
	t.Parallel()
	api := newAPIServer(t, "parley-staging", "parley", "token", nil)
	dir, env := serviceAccount(t, api, "token", "parley-staging")
	cluster, err := InCluster(func(k string) string { return env[k] }, dir)
	if err != nil {
		t.Fatal(err)
	}
	d, err := cluster.Deployment("parley-staging/other")
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.ReadyReplicas(t.Context())
	if err == nil || !strings.Contains(err.Error(), `404 Not Found: deployments.apps "other" not found`) {
		t.Fatalf("got %v, want the API's not-found message", err)
	}
}
