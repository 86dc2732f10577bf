package telemetry

import (
	"net/http"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns a metrics registry holding the Go runtime and process
// collectors. Every component registers its own series on it; nothing uses
// the global default registry.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// MetricsHandler serves reg in the Prometheus text format, or OpenMetrics
// when the scraper asks for it (exemplars need OpenMetrics).
func MetricsHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, EnableOpenMetrics: true})
}

// newBuildInfo returns the parley_build_info gauge, always 1, whose labels
// let dashboards and alerts tell releases apart. The revision label is only
// present when the binary was built from a VCS checkout.
func newBuildInfo(version string) prometheus.Collector {
	labels := prometheus.Labels{"version": version, "goversion": runtime.Version()}
	if rev := vcsRevision(); rev != "" {
		labels["revision"] = rev
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "parley_build_info",
		Help:        "Build of the running binary; always 1.",
		ConstLabels: labels,
	})
	g.Set(1)
	return g
}

func vcsRevision() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			return s.Value
		}
	}
	return ""
}
