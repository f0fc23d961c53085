package gc

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dvcr/dvcr/naming"
)

// Metrics are the collector's Prometheus metrics, in a registry of their
// own so that several collectors (tests) can live in one process.
type Metrics struct {
	Registry        *prometheus.Registry
	runs            *prometheus.CounterVec
	duration        prometheus.Histogram
	readOnlySeconds prometheus.Histogram
	freed           prometheus.Counter
	deleted         *prometheus.CounterVec
	lastSuccess     prometheus.Gauge
	readOnly        prometheus.Gauge
}

// NewMetrics creates and registers the metrics.
func NewMetrics() *Metrics {
	buckets := []float64{1, 5, 15, 30, 60, 120, 300, 600, 1800}
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dvcr_gc_runs_total", Help: "Garbage collection runs by result (success, fail).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "dvcr_gc_duration_seconds", Help: "Duration of garbage collection runs.", Buckets: buckets,
		}),
		readOnlySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "dvcr_gc_readonly_seconds", Help: "Time the registry spent read-only per garbage collection run.", Buckets: buckets,
		}),
		freed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dvcr_gc_freed_bytes", Help: "Bytes freed by garbage collection.",
		}),
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dvcr_gc_deleted_images_total", Help: "Images deleted by garbage collection, by kind (cvi, vi, vd).",
		}, []string{"kind"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dvcr_gc_last_success_timestamp_seconds", Help: "Unix time of the last successful garbage collection run.",
		}),
		readOnly: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dvcr_registry_readonly", Help: "1 while the registry refuses writes (garbage collection or maintenance), else 0.",
		}),
	}
	m.Registry.MustRegister(m.runs, m.duration, m.readOnlySeconds, m.freed, m.deleted, m.lastSuccess, m.readOnly)
	for _, r := range []string{ResultSuccess, ResultFail} {
		m.runs.WithLabelValues(r)
	}
	return m
}

// SetReadOnly records the registry's read-only state.
func (m *Metrics) SetReadOnly(readOnly bool) {
	if readOnly {
		m.readOnly.Set(1)
	} else {
		m.readOnly.Set(0)
	}
}

func (m *Metrics) observe(r *Result) {
	m.runs.WithLabelValues(r.Result).Inc()
	m.duration.Observe(r.FinishedAt.Sub(r.StartedAt).Seconds())
	m.readOnlySeconds.Observe(r.ReadOnlySeconds)
	if r.Freed > 0 {
		m.freed.Add(float64(r.Freed))
	}
	for _, img := range r.Deleted {
		m.deleted.WithLabelValues(kindLabel(img.Kind)).Inc()
	}
	if r.Succeeded() {
		m.lastSuccess.Set(float64(r.FinishedAt.Unix()))
	}
}

func kindLabel(resourceKind string) string {
	if k, err := naming.ParseKind(resourceKind); err == nil {
		return string(k)
	}
	return resourceKind
}
