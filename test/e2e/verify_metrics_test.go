package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dvcr/dvcr/test/dvcrtest"
	"github.com/dvcr/dvcr/verify"
)

const (
	corruptBlobs = "dvcr_verify_corrupt_blobs"
	lastRun      = "dvcr_verify_last_run_timestamp_seconds"
	runsOK       = `dvcr_verify_runs_total{result="ok"}`
	runsCorrupt  = `dvcr_verify_runs_total{result="corrupt"}`
)

// verifyMetrics is the dvcr_verify_* samples of a server's /metrics.
func verifyMetrics(t *testing.T, srv *dvcrtest.Server) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, line := range strings.Split(httpGet(t, srv.MetricsURL(t)), "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(name, "dvcr_verify_") {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		out[name] = v
	}
	return out
}

// differing is what of want the samples do not show.
func differing(got, want map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			out[k] = v
		}
	}
	return out
}

// waitMetrics waits until the server exports want: the metrics follow the
// recorded results every verify.RefreshEvery.
func waitMetrics(t *testing.T, srv *dvcrtest.Server, want map[string]float64) {
	t.Helper()
	deadline := time.Now().Add(2*verify.RefreshEvery + 10*time.Second)
	for {
		got := verifyMetrics(t, srv)
		miss := differing(got, want)
		if len(miss) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics %v, want %v", got, miss)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestVerifyMetrics: dvcr serve's verify metrics follow the results that
// `dvcr-cleaner verify`, another process, records in storage, and a
// restart of dvcr serve restores the gauges from those records instead of
// clearing an alert on corrupt blobs.
func TestVerifyMetrics(t *testing.T) {
	e := newVerifyEnv(t, dvcrtest.ServerOptions{Debug: true}, filesystem)
	if miss := differing(verifyMetrics(t, e.srv), map[string]float64{corruptBlobs: 0, lastRun: 0, runsOK: 0, runsCorrupt: 0}); len(miss) > 0 {
		t.Fatalf("metrics of a store never verified lack %v", miss)
	}
	var finished float64
	t.Run("manual run counted", func(t *testing.T) {
		e.damage(t, betaData(e), flipByte)
		r, res := e.verify(t)
		wantProblems(t, r, res, e.beta.Image.Layer.Digest, verify.ProblemCorrupt, "vi/default/beta")
		finished = float64(r.FinishedAt.Unix())
		start := time.Now()
		waitMetrics(t, e.srv, map[string]float64{corruptBlobs: 1, lastRun: finished, runsCorrupt: 1, runsOK: 0})
		t.Logf("dvcr serve exported the cleaner's run after %s", time.Since(start).Round(time.Millisecond))
	})
	e.srv.Stop(t)
	// The store keeps its files: the data directory stays.
	e.srv = dvcrtest.StartServer(t, dvcrtest.ServerOptions{DataDir: e.srv.DataDir, Debug: true})
	// At once, before any refresh: restored from the records. The run
	// before the restart is not counted again by the new process.
	if miss := differing(verifyMetrics(t, e.srv), map[string]float64{corruptBlobs: 1, lastRun: finished, runsCorrupt: 0}); len(miss) > 0 {
		t.Fatalf("after a restart the metrics lack %v:\n%s", miss, e.srv.Stderr())
	}
	// The blob is whole again: the next run clears the gauge.
	r, res := e.verify(t)
	if res.ExitCode != 0 || !r.OK() {
		t.Fatalf("verify after restoring the blob: exit %d %+v", res.ExitCode, r)
	}
	waitMetrics(t, e.srv, map[string]float64{corruptBlobs: 0, lastRun: float64(r.FinishedAt.Unix()), runsOK: 1, runsCorrupt: 0})
}
