package verify

import (
	"context"
	"errors"
	"testing"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
	"github.com/opencontainers/go-digest"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// flaky is a driver that fails every call while down, and counts the
// reads of whole files.
type flaky struct {
	storagedriver.StorageDriver
	down  bool
	reads int
}

var errDown = errors.New("storage unreachable")

func (d *flaky) Stat(ctx context.Context, p string) (storagedriver.FileInfo, error) {
	if d.down {
		return nil, errDown
	}
	return d.StorageDriver.Stat(ctx, p)
}

func (d *flaky) GetContent(ctx context.Context, p string) ([]byte, error) {
	if d.down {
		return nil, errDown
	}
	d.reads++
	return d.StorageDriver.GetContent(ctx, p)
}

// record is a run that ended at minute min with n corrupt blobs (fail
// when n < 0).
func record(trigger string, min, n int) Result {
	at := time.Date(2026, 12, 4, 10, min, 0, 0, time.UTC)
	r := Result{Result: ResultOK, Trigger: trigger, StartedAt: at.Add(-time.Second), FinishedAt: at, Images: []Image{}}
	switch {
	case n < 0:
		r.Result = ResultFail
	case n > 0:
		r.Result = ResultCorrupt
		for i := range n {
			r.Unreferenced = append(r.Unreferenced, Problem{Blob: digest.FromString(string(rune('a' + i))), Problem: ProblemCorrupt})
		}
	}
	return r
}

type metricsEnv struct {
	driver *flaky
	store  *ResultStore
	m      *Metrics
}

func newMetricsEnv(t *testing.T, recorded ...Result) *metricsEnv {
	t.Helper()
	e := &metricsEnv{driver: &flaky{StorageDriver: inmemory.New()}}
	e.store = NewResultStore(e.driver)
	e.m = NewMetrics(prometheus.NewRegistry())
	for _, r := range recorded {
		e.add(t, r)
	}
	return e
}

func (e *metricsEnv) add(t *testing.T, r Result) {
	t.Helper()
	if err := e.store.Add(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

func (e *metricsEnv) refresh(t *testing.T) {
	t.Helper()
	if err := e.m.Refresh(context.Background(), e.store); err != nil {
		t.Fatal(err)
	}
}

// want checks the gauges and the runs counted by result (ok, corrupt, fail).
func (e *metricsEnv) want(t *testing.T, problems, lastRunMinute int, runs [3]float64) {
	t.Helper()
	last := 0.0
	if lastRunMinute >= 0 {
		last = float64(time.Date(2026, 12, 4, 10, lastRunMinute, 0, 0, time.UTC).Unix())
	}
	got := [5]float64{value(t, e.m.problems), value(t, e.m.lastRun),
		value(t, e.m.runs.WithLabelValues(ResultOK)), value(t, e.m.runs.WithLabelValues(ResultCorrupt)),
		value(t, e.m.runs.WithLabelValues(ResultFail))}
	want := [5]float64{float64(problems), last, runs[0], runs[1], runs[2]}
	if got != want {
		t.Fatalf("corrupt blobs, last run, runs ok/corrupt/fail = %v, want %v", got, want)
	}
}

func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	if out.Counter != nil {
		return out.Counter.GetValue()
	}
	return out.Gauge.GetValue()
}

// TestMetricsRestored: at start-up the gauges show the last finished run
// recorded (a failed run after it does not reset them), and the runs
// recorded before are not counted again.
func TestMetricsRestored(t *testing.T) {
	e := newMetricsEnv(t, record("manual", 1, 0), record("schedule", 2, 2), record("schedule", 3, -1))
	e.want(t, 0, -1, [3]float64{})
	e.refresh(t)
	e.want(t, 2, 2, [3]float64{})

	empty := newMetricsEnv(t)
	empty.refresh(t)
	empty.want(t, 0, -1, [3]float64{})
}

// TestMetricsFollowOthers: runs recorded by other processes are counted
// once when they are read; the runs of this process (Observe) are counted
// at once and not again when their record is read back.
func TestMetricsFollowOthers(t *testing.T) {
	e := newMetricsEnv(t, record("schedule", 1, 0))
	e.refresh(t)
	e.add(t, record("manual", 2, 1))
	e.add(t, record("manual", 3, -1))
	e.refresh(t)
	e.want(t, 1, 2, [3]float64{0, 1, 1})
	e.refresh(t)
	e.want(t, 1, 2, [3]float64{0, 1, 1})

	own := record("schedule", 4, 0)
	e.m.Observe(&own)
	e.want(t, 0, 4, [3]float64{1, 1, 1})
	e.add(t, own)
	e.refresh(t)
	e.want(t, 0, 4, [3]float64{1, 1, 1})
}

// TestMetricsStorageDown: an unreadable store leaves the metrics as they
// were; they catch up once it answers. An unchanged records file is not
// read again.
func TestMetricsStorageDown(t *testing.T) {
	e := newMetricsEnv(t, record("manual", 1, 3))
	e.refresh(t)
	reads := e.driver.reads
	e.refresh(t)
	if e.driver.reads != reads {
		t.Errorf("an unchanged records file was read again (%d reads, then %d)", reads, e.driver.reads)
	}
	e.add(t, record("manual", 2, 0))
	e.driver.down = true
	if err := e.m.Refresh(context.Background(), e.store); !errors.Is(err, errDown) {
		t.Fatalf("refresh with the storage down: %v", err)
	}
	e.want(t, 3, 1, [3]float64{})
	e.driver.down = false
	e.refresh(t)
	e.want(t, 0, 2, [3]float64{1, 0, 0})
}
