package check

import (
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/parleychat/parley/loadtest/kube"
)

// growing is a replica count that is 2 for the first three looks and 3
// from then on, and says whether it has grown.
func growing() (replicas func() int, grown func() bool) {
	var looks atomic.Int64
	replicas = func() int {
		if looks.Add(1) > 3 {
			return 3
		}
		return 2
	}
	return replicas, func() bool { return looks.Load() > 3 }
}

func autoscaleConfig() Config {
	return Config{Names: []string{Autoscale}, Prometheus: "http://prometheus", Replicas: `count(up{job="parley"} == 1)`, Pages: "pages", Timeout: 3 * time.Second}
}

func TestAutoscaleCheck(t *testing.T) {
	t.Parallel()
	noPages := func() int { return 0 }
	ended := make(chan struct{})
	close(ended)

	t.Run("a deployment that grows", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			replicas, _ := growing()
			v := checkerOf(autoscaleConfig(), standIns{"prometheus": prometheus(replicas, noPages)}).autoscale(t.Context(), ended)
			if !v.Pass || v.Figures["replicas_before"] != "2" || v.Figures["replicas_after"] != "3" || v.Figures["slo_held"] != "true" || v.Figures["time_to_scale"] != "2s" {
				t.Errorf("got %+v, want a pass from 2 to 3 replicas, seen 2s in (the fourth look, one a second after the count before)", v)
			}
		})
	})
	t.Run("a deployment that stays", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			stays := func() int { return 2 }
			v := checkerOf(autoscaleConfig(), standIns{"prometheus": prometheus(stays, noPages)}).autoscale(t.Context(), ended)
			if v.Pass || !strings.Contains(v.Detail, "no scale-up within 3s") {
				t.Errorf("got %+v, want a failure naming the timeout", v)
			}
		})
	})
	// A page that fires after the scale-up, while the load goes on, still
	// fails the check: the SLO did not hold.
	t.Run("a page after the scale-up", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			replicas, grown := growing()
			var pagedAt atomic.Int64 // looks at the pages once grown
			pagesLater := func() int {
				if grown() && pagedAt.Add(1) > 1 {
					return 1
				}
				return 0
			}
			loadEnded := make(chan struct{})
			time.AfterFunc(6*time.Second, func() { close(loadEnded) })
			v := checkerOf(autoscaleConfig(), standIns{"prometheus": prometheus(replicas, pagesLater)}).autoscale(t.Context(), loadEnded)
			if v.Pass || v.Figures["replicas_after"] != "3" || v.Figures["slo_held"] != "false" {
				t.Errorf("got %+v, want a failure with slo_held false", v)
			}
		})
	})
	t.Run("a page after the load", func(t *testing.T) {
		t.Parallel()
		synctest.Test(t, func(t *testing.T) {
			replicas, _ := growing()
			loadEnded := make(chan struct{})
			start := time.Now()
			time.AfterFunc(6*time.Second, func() { close(loadEnded) })
			pagesAfterTheLoad := func() int {
				if time.Since(start) > 6*time.Second {
					return 1
				}
				return 0
			}
			v := checkerOf(autoscaleConfig(), standIns{"prometheus": prometheus(replicas, pagesAfterTheLoad)}).autoscale(t.Context(), loadEnded)
			if !v.Pass || v.Figures["slo_held"] != "true" {
				t.Errorf("got %+v, want a pass: the page came after the load", v)
			}
		})
	})
}

// With a Deployment the check reads its ready replicas from the
// Kubernetes API. No cluster runs here, so a stand-in API server answers
// GET .../deployments/{name} over TLS for the bearer token alone, its
// ready count growing after a few polls (loadtest/kube tests the API's
// other answers against a fuller stand-in). It is a real socket, so the
// check polls every 10 ms of real time instead of a bubble's seconds.
func TestAutoscaleCheckReadsTheKubernetesAPI(t *testing.T) {
	t.Parallel()
	var polls atomic.Int64
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/apis/apps/v1/namespaces/staging/deployments/parley" || r.Header.Get("Authorization") != "Bearer t" {
			http.NotFound(w, r)
			return
		}
		ready := 2
		if polls.Add(1) > 3 {
			ready = 4
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"parley","namespace":"staging"},"status":{"replicas":%d,"readyReplicas":%d}}`, ready, ready)
	}))
	defer api.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: api.Certificate().Raw})
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: "`+api.URL+`", certificate-authority-data: `+base64.StdEncoding.EncodeToString(ca)+`}}]
contexts: [{name: test, context: {cluster: test, user: test}}]
current-context: test
users: [{name: test, user: {token: t}}]
`), 0o600)
	cluster, err := kube.LoadKubeconfig(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	d, err := cluster.Deployment("staging/parley")
	if err != nil {
		t.Fatal(err)
	}
	k := &checker{Config: Config{Deployment: d, Timeout: 5 * time.Second}, poll: 10 * time.Millisecond}
	v := k.autoscale(t.Context(), nil)
	if !v.Pass || v.Figures["replicas_before"] != "2" || v.Figures["replicas_after"] != "4" {
		t.Fatalf("got %+v, want a pass from 2 to 4 ready replicas", v)
	}
}
