package main

import (
	"context"
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
	"time"
)

// fakePrometheus answers every query with the replica count replicas()
// gives, and the pages query with pages().
func fakePrometheus(replicas, pages func() int) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := pages()
		if strings.Contains(r.URL.Query().Get("query"), "up{") {
			n = replicas()
		}
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[0,"%d"]}]}}`, n)
	}))
}

func TestAutoscaleCheck(t *testing.T) {
	var polls atomic.Int64
	grown := func() bool { return polls.Load() > 3 }
	growing := func() int {
		if polls.Add(1) > 3 {
			return 3
		}
		return 2
	}
	noPages := func() int { return 0 }
	grows := fakePrometheus(growing, noPages)
	defer grows.Close()
	stays := fakePrometheus(func() int { return 2 }, noPages)
	defer stays.Close()
	cfg := func(prom string) checkConfig {
		return checkConfig{prometheus: prom, replicas: `count(up{job="parley"} == 1)`, critical: "pages", timeout: 3 * time.Second}
	}
	ended := make(chan struct{})
	close(ended)

	v := autoscale(context.Background(), cfg(grows.URL), ended)
	if !v.Pass || v.Figures["replicas_before"] != "2" || v.Figures["replicas_after"] != "3" || v.Figures["slo_held"] != "true" {
		t.Errorf("a deployment that grows: got %+v, want a pass from 2 to 3 replicas", v)
	}
	v = autoscale(context.Background(), cfg(stays.URL), ended)
	if v.Pass || !strings.Contains(v.Detail, "no scale-up within 3s") {
		t.Errorf("a deployment that stays: got %+v, want a failure naming the timeout", v)
	}

	// A page that fires after the scale-up, while the load goes on, still
	// fails the check: the SLO did not hold.
	polls.Store(0)
	var pagedAt atomic.Int64 // polls of the pages query once grown
	pagesLater := fakePrometheus(growing, func() int {
		if grown() && pagedAt.Add(1) > 1 {
			return 1
		}
		return 0
	})
	defer pagesLater.Close()
	loadEnded := make(chan struct{})
	time.AfterFunc(6*time.Second, func() { close(loadEnded) })
	v = autoscale(context.Background(), cfg(pagesLater.URL), loadEnded)
	if v.Pass || v.Figures["replicas_after"] != "3" || v.Figures["slo_held"] != "false" {
		t.Errorf("a page after the scale-up: got %+v, want a failure with slo_held false", v)
	}
}

// With a Deployment the check reads its ready replicas from the
// Kubernetes API. No cluster runs here, so a stand-in API server answers
// GET .../deployments/{name} over TLS as the API does, for the bearer
// token alone, its ready count growing after a few polls; loadtest/kube
// tests the API's other answers against a fuller stand-in.
func TestAutoscaleCheckReadsTheKubernetesAPI(t *testing.T) {
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
	d, err := kubeDeployment("staging/parley", kubeconfig, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	v := autoscale(context.Background(), checkConfig{deployment: d, timeout: 5 * time.Second}, nil)
	if !v.Pass || v.Figures["replicas_before"] != "2" || v.Figures["replicas_after"] != "4" {
		t.Fatalf("got %+v, want a pass from 2 to 4 ready replicas", v)
	}
	if _, err := kubeDeployment("parley", kubeconfig, env(nil)); err == nil || !strings.Contains(err.Error(), "namespace/name") {
		t.Errorf("a deployment without namespace: got %v, want an error naming the form", err)
	}
}
