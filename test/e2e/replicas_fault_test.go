package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/dvcr/dvcr/gc"
	"github.com/dvcr/dvcr/test/dvcrtest"
	"github.com/dvcr/dvcr/test/envtest"
)

// TestReplicasAbortAndCrash: the two ways a window must not go on. A
// follower that renews its Lease but cannot acknowledge (a write in flight
// that does not finish) aborts the run with nothing deleted. A leader that
// dies in the middle of the sweep (a fault point, exit 86) leaves the
// follower read-only no longer than the window Lease's expiry plus the
// margin; no live image loses a blob; the follower takes over, reports the
// run as interrupted and completes the work.
func TestReplicasAbortAndCrash(t *testing.T) {
	e := &replicaEnv{cluster: envtest.Start(t), s3: dvcrtest.StartS3(t)}
	e.kubeconfig = e.cluster.Kubeconfig(t)
	// replica-1 starts alone, so it leads; only it stops at the fault point.
	r1 := e.startReplica(t, "replica-1", gc.FaultEnv+"=detach")
	e.replicas = []*replicaProc{r1}
	if e.leader(t) != r1 {
		t.Fatal("replica-1, alone, does not lead")
	}
	r2 := e.startReplica(t, "replica-2")
	e.replicas = append(e.replicas, r2)
	waitWritable(t, r1, 30*time.Second)
	waitWritable(t, r2, 30*time.Second)

	golden := dvcrtest.MakeDisk(t, "golden", "qcow2", "16M", 1<<20)
	e.cluster.CreateCVI(t, "golden")
	dvcrtest.Push(t, r2.srv, golden, "cvi/golden", "latest")
	orphan := dvcrtest.MakeDisk(t, "orphan", "raw", "4M", 4<<20)
	dvcrtest.Push(t, r2.srv, orphan, "cvi/orphan", "latest")

	t.Run("a live follower that does not acknowledge aborts the run", func(t *testing.T) {
		stuck := stuckUpload(t, r2)
		out, err := e.startGC(t, r1)()
		stuck()
		if err == nil || !strings.Contains(out, "did not acknowledge the GC window") || !strings.Contains(out, "replica-2") {
			t.Fatalf("gc run with a follower that cannot drain: %v\n%s", err, out)
		}
		if st := manifestStatus(t, r1, "cvi/orphan"); st != http.StatusOK {
			t.Errorf("the aborted run deleted the orphan: %d", st)
		}
		waitWritable(t, r1, 10*time.Second)
		waitWritable(t, r2, 10*time.Second)
	})

	t.Run("leader dies in the sweep", func(t *testing.T) {
		out, _ := e.startGC(t, r1)()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := r1.srv.Wait(ctx)
		cancel()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != gc.FaultExitCode {
			t.Fatalf("replica-1 did not stop at the fault point (%v):\n%s\n%s", err, out, tail(r1.srv.Stderr(), 20))
		}
		crashed := time.Now()
		waitWritable(t, r2, testLeaseDuration+testMargin+2*time.Second)
		t.Logf("replica-2 takes writes %s after the leader died in the window (Lease %s + margin %s)",
			time.Since(crashed).Round(10*time.Millisecond), testLeaseDuration, testMargin.Round(time.Millisecond))
		assertSameDisk(t, golden, dvcrtest.Pull(t, r2.srv, "cvi/golden", "latest"))
		// Taking writes follows replica-1's replica Lease; taking the lead
		// follows dvcr-leader, renewed on its own clock: wait for it too.
		waitLeader(t, e, r2, testLeaseDuration+testMargin+2*time.Second)
		res := e.cleaner(t, r2, "gc", "run", "--yes")
		if res.ExitCode != 0 {
			t.Fatalf("the next run on replica-2: exit %d\n%s%s", res.ExitCode, res.Stdout, res.Stderr)
		}
		if st := manifestStatus(t, r2, "cvi/orphan"); st != http.StatusNotFound {
			t.Errorf("after the next run the orphan answers %d", st)
		}
		assertSameDisk(t, golden, dvcrtest.Pull(t, r2.srv, "cvi/golden", "latest"))
		var records []gc.Result
		status := e.cleaner(t, r2, "gc", "status", "-o", "json")
		if err := json.Unmarshal([]byte(status.Stdout), &records); err != nil {
			t.Fatalf("gc status -o json: %v\n%s", err, status.Stdout)
		}
		interrupted := false
		for _, r := range records {
			interrupted = interrupted || r.Reason == gc.ReasonInterrupted
		}
		if !interrupted {
			t.Errorf("gc status has no interrupted run: %+v", records)
		}
	})
}

// stuckUpload keeps a blob upload's PATCH in flight on r (its body never
// ends) until the returned function is called.
func stuckUpload(t *testing.T, r *replicaProc) (finish func()) {
	t.Helper()
	loc := uploadStep(t, http.MethodPost, r, "/v2/cvi/stuck/blobs/uploads/", nil, "", http.StatusAccepted)
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPatch, r.srv.URL()+u.RequestURI(), pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	if _, err := pw.Write([]byte("the first bytes of a write that does not finish")); err != nil {
		t.Fatal(err)
	}
	finish = func() {
		_ = pw.CloseWithError(io.ErrUnexpectedEOF)
		<-done
	}
	t.Cleanup(func() { _ = pw.Close() })
	return finish
}

// waitLeader waits until want holds dvcr-leader.
func waitLeader(t *testing.T, e *replicaEnv, want *replicaProc, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for e.leader(t) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not take over dvcr-leader within %s", want.name, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
