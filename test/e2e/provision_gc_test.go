package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/dvcr/dvcr/gc"
	"github.com/dvcr/dvcr/test/dvcrtest"
)

// TestProvisionDuringGC: an import running when a garbage collection run
// opens its read-only window says so (Ready condition reason
// ProvisioningPostponed), then completes after the run with identical
// bytes; the run deletes nothing of it.
func TestProvisionDuringGC(t *testing.T) {
	e := newProvEnv(t, noGrace) // provisioning on, gc without a grace period
	g := &gcEnv{cluster: e.cluster, srv: e.srv, kubeconfig: e.kubeconfig}
	web := newFileServer(t, 1<<20) // 24 s of transfer
	data := randomData(t, 24<<20)
	e.apply(t, httpCVI("racing", web.add("racing.raw", data)))
	e.waitFor(t, "", "racing", "Provisioning past 10%", time.Minute, func(o *unstructured.Unstructured) bool {
		return status(o, "phase") == "Provisioning" && progressOf(status(o, "progress")) >= 10
	})

	hold := dvcrtest.StartSlowUpload(t, e.srv.URL(), "vi/default/slow") // keeps the window open
	type runResult struct {
		rec gc.Result
		out dvcrtest.CleanerResult
	}
	collected := make(chan runResult, 1)
	go func() { rec, out := g.run(t); collected <- runResult{rec, out} }()
	waitReadOnly(t, e.srv.URL())
	obj := e.waitFor(t, "", "racing", "postponed by the GC window", 30*time.Second, func(o *unstructured.Unstructured) bool {
		reason, _ := condition(o, "Ready")
		return reason == "ProvisioningPostponed"
	})
	if _, msg := condition(obj, "Ready"); !strings.Contains(msg, "garbage collection") {
		t.Errorf("ProvisioningPostponed message: %q", msg)
	}
	if st := status(obj, "phase"); st != "Provisioning" {
		t.Errorf("phase %q while postponed, want Provisioning", st)
	}
	if status := hold.Finish(); status != http.StatusCreated {
		t.Fatalf("upload holding the window: %d", status)
	}
	res := <-collected
	if res.out.ExitCode != 0 || !res.rec.Succeeded() {
		t.Fatalf("gc run: exit %d, %+v\n%s", res.out.ExitCode, res.rec, res.out.Stderr)
	}
	for _, d := range res.rec.Deleted {
		if strings.HasPrefix(d.Repository, "cvi/racing") {
			t.Errorf("the gc run deleted %s", d.Repository)
		}
	}

	obj = e.waitPhase(t, "", "racing", "Ready", 2*time.Minute)
	if reason, _ := condition(obj, "Ready"); reason != "Ready" {
		t.Errorf("conditions after the window: %s", conditions(obj))
	}
	headDigest(t, e.srv, "cvi/racing") // the repository is there
	if _, got := untarSingle(t, pulledLayer(t, e.srv, "cvi/racing")); !bytes.Equal(got, data) {
		t.Fatal("the image imported across the window differs from the source")
	}
}

// progressOf reads "12.5%" as 12.5 (0 when empty).
func progressOf(s string) float64 {
	var v float64
	_, _ = fmt.Sscan(strings.TrimSuffix(s, "%"), &v)
	return v
}
