package verify

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RefreshEvery is how often dvcr serve re-reads the recorded results for
// the metrics (Follow): well below any usual scrape interval, so a run of
// another process shows at the next scrape or the one after.
const RefreshEvery = 15 * time.Second

// fullReadEvery re-reads the records even when their size and modification
// time look unchanged: S3 gives modification times to the second, and two
// records of one size written within a second would look alike.
const fullReadEvery = 5 * time.Minute

// Metrics are the verification's Prometheus metrics. They follow the
// recorded results (dvcr/verify/results.json), not only the runs of this
// process: a run is as often `dvcr-cleaner verify` through kubectl exec (a
// process of its own) or a run of the leading replica, and an alert on
// corrupt blobs must neither miss those nor clear itself when dvcr serve
// restarts.
//
// The records are read in the background (Follow), not at scrape time: a
// scrape then never waits on the storage (an S3 round trip, or an outage,
// which keeps the last values), and several Prometheus servers scraping do
// not multiply the reads. A read costs a stat of the records file unless
// it changed.
type Metrics struct {
	runs     *prometheus.CounterVec
	problems prometheus.Gauge
	lastRun  prometheus.Gauge

	mu sync.Mutex
	// primed: the records were read once; records not seen then are runs
	// to count. Those there at start-up ran before this process and are
	// not counted again (a counter starts at 0 with its process).
	primed bool
	seen   map[string]bool // keys of the records read last
	// local are the keys of the runs of this process (Observe), so that
	// their records are not counted a second time when read back.
	local  []string
	latest time.Time // FinishedAt of the run the gauges show
	stamp  stamp     // of the records file read last
	readAt time.Time // when the records file was read last
}

// NewMetrics creates the metrics and registers them in reg (the registry
// of the garbage collector's metrics in dvcr serve).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dvcr_verify_runs_total",
			Help: "Storage verification runs by result (ok, corrupt, fail), of any trigger (schedule, dvcr-cleaner verify, another replica), counted as this process finds them recorded in storage.",
		}, []string{"result"}),
		problems: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dvcr_verify_corrupt_blobs",
			Help: "Blob problems (corrupt, missing, truncated, dangling-link) found by the last finished storage verification run recorded in storage, of any trigger.",
		}),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dvcr_verify_last_run_timestamp_seconds",
			Help: "Unix time at which the last finished storage verification run (ok or corrupt; a failed run checked nothing) recorded in storage ended; 0 when none is recorded.",
		}),
		seen: map[string]bool{},
	}
	reg.MustRegister(m.runs, m.problems, m.lastRun)
	for _, r := range []string{ResultOK, ResultCorrupt, ResultFail} {
		m.runs.WithLabelValues(r)
	}
	return m
}

// Observe counts a run of this process at once, whether or not its record
// can be written, and moves the gauges to it if it finished.
func (m *Metrics) Observe(r *Result) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.runs.WithLabelValues(r.Result).Inc()
	m.local = append(m.local, r.key())
	if len(m.local) > KeepResults {
		m.local = m.local[len(m.local)-KeepResults:]
	}
	m.show(r)
}

// show moves the gauges to r when it finished after the run they show. A
// failed run leaves them as the last finished run set them.
func (m *Metrics) show(r *Result) {
	if r.Result == ResultFail || !r.FinishedAt.After(m.latest) {
		return
	}
	m.latest = r.FinishedAt
	m.problems.Set(float64(r.ProblemCount()))
	m.lastRun.Set(float64(r.FinishedAt.Unix()))
}

// Refresh reads the records when they changed: the first read restores the
// gauges (start-up), later ones also count the runs recorded since. On an
// error the metrics keep their values.
func (m *Metrics) Refresh(ctx context.Context, store *ResultStore) error {
	st, err := store.stamp(ctx)
	if err != nil {
		return err
	}
	m.mu.Lock()
	unchanged := m.primed && st.same(m.stamp) && time.Since(m.readAt) < fullReadEvery
	m.mu.Unlock()
	if unchanged {
		return nil
	}
	list, err := store.List(ctx)
	if err != nil {
		return err
	}
	m.absorb(list, st)
	return nil
}

func (m *Metrics) absorb(list []Result, st stamp) {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := make(map[string]bool, len(list))
	for i := range list {
		r := &list[i]
		k := r.key()
		seen[k] = true
		if m.primed && !m.seen[k] && !m.isLocal(k) {
			m.runs.WithLabelValues(r.Result).Inc()
		}
		m.show(r)
	}
	m.seen, m.primed, m.stamp, m.readAt = seen, true, st, time.Now()
}

func (m *Metrics) isLocal(key string) bool {
	for _, k := range m.local {
		if k == key {
			return true
		}
	}
	return false
}

// Follow refreshes the metrics every interval until ctx ends. A failing
// read is logged once, and once more when reads work again, not at every
// interval.
func (m *Metrics) Follow(ctx context.Context, store *ResultStore, interval time.Duration, logger *slog.Logger) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		rctx, cancel := context.WithTimeout(ctx, interval)
		err := m.Refresh(rctx, store)
		cancel()
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			logger.Warn("reading the recorded results; the metrics keep their last values", "err", err)
		case err == nil && failing:
			logger.Info("the recorded results are readable again")
		}
		failing = err != nil
	}
}
