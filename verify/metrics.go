package verify

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the verification's Prometheus metrics.
type Metrics struct {
	runs    *prometheus.CounterVec
	corrupt prometheus.Gauge
}

// NewMetrics creates the metrics and registers them in reg (the registry
// of the garbage collector's metrics in dvcr serve).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dvcr_verify_runs_total", Help: "Storage verification runs by result (ok, corrupt, fail).",
		}, []string{"result"}),
		corrupt: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dvcr_verify_corrupt_blobs", Help: "Blob problems (corrupt, missing, truncated, dangling-link) found by the last storage verification run.",
		}),
	}
	reg.MustRegister(m.runs, m.corrupt)
	for _, r := range []string{ResultOK, ResultCorrupt, ResultFail} {
		m.runs.WithLabelValues(r)
	}
	return m
}

// Observe records a run. A failed run leaves the gauge as the last
// finished run set it.
func (m *Metrics) Observe(r *Result) {
	if m == nil {
		return
	}
	m.runs.WithLabelValues(r.Result).Inc()
	if r.Result != ResultFail {
		m.corrupt.Set(float64(r.ProblemCount()))
	}
}
