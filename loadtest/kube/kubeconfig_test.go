package kube

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// kubeconfigFile writes a kubeconfig whose current context reaches server
// with the given cluster and user fields (YAML flow mappings' contents),
// in the given namespace, and returns its path.
func kubeconfigFile(t *testing.T, dir, server, clusterFields, userFields, namespace string) string {
	t.Helper()
	path := filepath.Join(dir, "kubeconfig")
	writeFile(t, path, `apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: "`+server+`", `+clusterFields+`}}]
users: [{name: test, user: {`+userFields+`}}]
contexts: [{name: other, context: {cluster: test, user: test}}, {name: test, context: {cluster: test, user: test, namespace: "`+namespace+`"}}]
current-context: test
`)
	return path
}

// Out of the cluster, the check reads the Deployment as a kubeconfig's
// current context says: CA and token given inline or in files (relative
// to the kubeconfig, as kubectl reads them), or a client certificate.
func TestKubeconfigReadsTheDeploymentAsItsContext(t *testing.T) {
	t.Parallel()
	clientCA, certPEM, keyPEM := selfSignedClient(t)
	api := newAPIServer(t, "staging", "parley", "kubeconfig-token", clientCA)
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	tests := []struct {
		name, cluster, user string
	}{
		{"CA and token in files beside it", `certificate-authority: ca.crt`, `tokenFile: secrets/token`},
		{"CA and token inline", `certificate-authority-data: ` + b64(api.caPEM()), `token: kubeconfig-token`},
		{"a client certificate", `certificate-authority-data: ` + b64(api.caPEM()),
			`client-certificate-data: ` + b64(certPEM) + `, client-key-data: ` + b64(keyPEM)},
		{"a tokenFile over a stale inline token", `certificate-authority: ca.crt`, `token: stale, tokenFile: secrets/token`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "ca.crt"), string(api.caPEM()))
			if err := os.Mkdir(filepath.Join(dir, "secrets"), 0o700); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(dir, "secrets", "token"), "kubeconfig-token\n")
			cluster, err := LoadKubeconfig(kubeconfigFile(t, dir, api.URL, tt.cluster, tt.user, "staging"))
			if err != nil {
				t.Fatal(err)
			}
			d, err := cluster.Deployment("parley")
			if err != nil {
				t.Fatal(err)
			}
			if n, err := d.ReadyReplicas(t.Context()); err != nil || n != 2 {
				t.Fatalf("got %d, %v; want 2 ready replicas", n, err)
			}
		})
	}
}

func TestKubeconfigErrorsSayWhatIsWrong(t *testing.T) {
	t.Parallel()
	api := newAPIServer(t, "staging", "parley", "kubeconfig-token", nil)
	ca := `certificate-authority-data: ` + base64.StdEncoding.EncodeToString(api.caPEM())
	tests := []struct {
		name, cluster, user, want string
	}{
		{"a credential plugin", ca, `exec: {apiVersion: client.authentication.k8s.io/v1, command: aws}`, "credential plugin"},
		{"an auth provider", ca, `auth-provider: {name: oidc}`, "credential plugin"},
		{"basic auth", ca, `username: admin, password: secret`, "username and password"},
		{"impersonation", ca, `token: kubeconfig-token, as: admin`, "impersonates"},
		{"a CA and no verification", ca + `, insecure-skip-tls-verify: true`, `token: kubeconfig-token`, "choose one"},
		{"a missing CA file", `certificate-authority: nowhere.crt`, `token: kubeconfig-token`, "nowhere.crt"},
		{"a CA file of no certificate", `certificate-authority-data: ` + base64.StdEncoding.EncodeToString([]byte("nope")), `token: t`, "holds no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadKubeconfig(kubeconfigFile(t, t.TempDir(), api.URL, tt.cluster, tt.user, "staging"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}

	t.Run("a wrong token", func(t *testing.T) {
		t.Parallel()
		cluster, err := LoadKubeconfig(kubeconfigFile(t, t.TempDir(), api.URL, ca, `token: wrong`, "staging"))
		if err != nil {
			t.Fatal(err)
		}
		d, _ := cluster.Deployment("parley")
		if _, err := d.ReadyReplicas(t.Context()); err == nil || !strings.Contains(err.Error(), "401 Unauthorized: Unauthorized") {
			t.Fatalf("got %v, want the API's 401", err)
		}
	})
	t.Run("a name without a namespace to put it in", func(t *testing.T) {
		t.Parallel()
		cluster, err := LoadKubeconfig(kubeconfigFile(t, t.TempDir(), api.URL, ca, `token: kubeconfig-token`, ""))
		if err != nil {
			t.Fatal(err)
		}
		for _, ref := range []string{"parley", "staging/", "/parley", "a/b/c"} {
			if _, err := cluster.Deployment(ref); err == nil || !strings.Contains(err.Error(), "namespace/name") {
				t.Errorf("deployment %q: got %v, want an error naming the form", ref, err)
			}
		}
	})
}

// The autoscale Job's kubeconfig (k8s/checks/autoscale) is within what
// LoadKubeconfig reads: the in-cluster address, and the CA and token the
// kubelet mounts, rotated token and all.
func TestTheAutoscaleJobsKubeconfigIsRead(t *testing.T) {
	t.Parallel()
	const path = "../../k8s/checks/autoscale/kubeconfig"
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, u, _, err := parseKubeconfig(raw)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if c.Server != "https://kubernetes.default.svc" || c.CertificateAuthority != ServiceAccountDir+"/ca.crt" || u.TokenFile != ServiceAccountDir+"/token" {
		t.Errorf("%s: server %s, CA %s, token file %s; want the in-cluster address and the mounted service account", path, c.Server, c.CertificateAuthority, u.TokenFile)
	}
}
