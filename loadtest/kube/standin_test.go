package kube

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// apiServer stands in for the Kubernetes API server, which cannot run
// here. Like the real one it serves HTTPS with a certificate of its own
// CA, answers GET /apis/apps/v1/namespaces/{ns}/deployments/{name} with
// the Deployment as JSON, and answers anything else with a Status object:
// 401 for a caller with neither a valid bearer token nor a client
// certificate its CA signed, 404 for another path or Deployment, 405 for
// another method. Where it differs: it holds one Deployment and lets any
// authenticated caller read it (no RBAC), and the Deployment carries only
// the fields the check reads besides kind and metadata.
type apiServer struct {
	*httptest.Server
	namespace, name string
	clientCA        *x509.Certificate // signs the client certificates it accepts

	mu    sync.Mutex
	token string // the bearer token it accepts now
	ready int
}

func newAPIServer(t *testing.T, namespace, name, token string, clientCA *x509.Certificate) *apiServer {
	t.Helper()
	a := &apiServer{namespace: namespace, name: name, clientCA: clientCA, token: token, ready: 2}
	a.Server = httptest.NewUnstartedServer(http.HandlerFunc(a.serve))
	a.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: x509.NewCertPool()}
	if clientCA != nil {
		a.TLS.ClientCAs.AddCert(clientCA)
	}
	a.StartTLS()
	t.Cleanup(a.Close)
	return a
}

// set changes the token it accepts and the Deployment's ready replicas.
func (a *apiServer) set(token string, ready int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.token, a.ready = token, ready
}

func (a *apiServer) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	token, ready := a.token, a.ready
	a.mu.Unlock()
	// The TLS handshake has verified any client certificate against the
	// CA already.
	certified := r.TLS != nil && len(r.TLS.PeerCertificates) > 0
	if r.Header.Get("Authorization") != "Bearer "+token && !certified {
		status(w, http.StatusUnauthorized, "Unauthorized", "Unauthorized")
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/apis/apps/v1/namespaces/")
	ns, name, _ := strings.Cut(rest, "/deployments/")
	switch {
	case !ok || strings.Contains(name, "/") || name == "":
		status(w, http.StatusNotFound, "NotFound", "the server could not find the requested resource")
	case r.Method != http.MethodGet:
		status(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "the server does not allow this method on the requested resource")
	case ns != a.namespace || name != a.name:
		status(w, http.StatusNotFound, "NotFound", fmt.Sprintf("deployments.apps %q not found", name))
	default:
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":%q,"namespace":%q},"spec":{"replicas":%d},"status":{"replicas":%d,"readyReplicas":%d}}`,
			name, ns, ready, ready, ready)
	}
}

// status writes the API's error answer: a Status object.
func status(w http.ResponseWriter, code int, reason, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{},
		"status": "Failure", "message": message, "reason": reason, "code": code,
	})
}

// caPEM is the stand-in's CA certificate, as a cluster's ca.crt holds it.
func (a *apiServer) caPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.Certificate().Raw})
}

// selfSignedClient is a self-signed client certificate and its key, in
// PEM: the stand-in trusts it as its client CA, as kind's API server
// trusts the certificate in a kind kubeconfig.
func selfSignedClient(t *testing.T) (cert *x509.Certificate, certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "loadtest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}
