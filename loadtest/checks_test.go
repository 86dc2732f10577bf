package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakePrometheus answers every query with the replica count replicas()
// gives, and with no pages.
func fakePrometheus(replicas func() int) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := 0
		if strings.Contains(r.URL.Query().Get("query"), "up{") {
			n = replicas()
		}
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[0,"%d"]}]}}`, n)
	}))
}

func TestAutoscaleCheck(t *testing.T) {
	var polls atomic.Int64
	grows := fakePrometheus(func() int {
		if polls.Add(1) > 3 {
			return 3
		}
		return 2
	})
	defer grows.Close()
	stays := fakePrometheus(func() int { return 2 })
	defer stays.Close()
	cfg := func(prom string) checkConfig {
		return checkConfig{prometheus: prom, replicas: `count(up{job="parley"} == 1)`, critical: "pages", timeout: 3 * time.Second}
	}

	v := autoscale(context.Background(), cfg(grows.URL))
	if !v.Pass || v.Figures["replicas_before"] != "2" || v.Figures["replicas_after"] != "3" {
		t.Errorf("a deployment that grows: got %+v, want a pass from 2 to 3 replicas", v)
	}
	v = autoscale(context.Background(), cfg(stays.URL))
	if v.Pass || !strings.Contains(v.Detail, "no scale-up within 3s") {
		t.Errorf("a deployment that stays: got %+v, want a failure naming the timeout", v)
	}
}
