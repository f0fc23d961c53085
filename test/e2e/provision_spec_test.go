package e2e

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestProvisionSpecChange: a spec changed while the import runs restarts it
// with the new source (the image ends with the second file's content); a
// spec changed after Ready is refused by the API server (the CRD's rule)
// and the image stays as it was.
func TestProvisionSpecChange(t *testing.T) {
	e := newProvEnv(t, "")
	web := newFileServer(t, 1<<20) // the first file takes ~16 s
	first := web.add("first.raw", randomData(t, 16<<20))
	second := randomData(t, 3<<20)
	secondURL := web.add("second.raw", second)

	e.apply(t, httpCVI("changing", first))
	e.waitFor(t, "", "changing", "Provisioning with progress", time.Minute, func(o *unstructured.Unstructured) bool {
		return status(o, "phase") == "Provisioning" && status(o, "progress") != "" && status(o, "progress") != "0.0%"
	})
	e.apply(t, httpCVI("changing", secondURL))
	obj := e.waitPhase(t, "", "changing", "Ready", time.Minute)
	if got := status(obj, "observedGeneration"); got != "2" {
		t.Errorf("status.observedGeneration = %q, want 2", got)
	}
	if got := status(obj, "size", "unpackedBytes"); got != "3145728" {
		t.Errorf("status.size.unpackedBytes = %q, want the second file's 3145728", got)
	}
	if _, got := untarSingle(t, pulledLayer(t, e.srv, "cvi/changing")); !bytes.Equal(got, second) {
		t.Fatalf("the image holds %d bytes that are not the second file's", len(got))
	}

	out, err := e.kubectl(t, httpCVI("changing", first), "apply", "-f", "-")
	if err == nil || !strings.Contains(out, "spec is immutable once the image is Ready") {
		t.Errorf("kubectl apply of a changed spec after Ready: %v\n%s", err, out)
	}
	time.Sleep(3 * time.Second) // a reconcile would have acted by now
	obj = e.image(t, "", "changing")
	if status(obj, "phase") != "Ready" || obj.GetGeneration() != 2 {
		t.Errorf("after the refused change: phase %q, generation %d", status(obj, "phase"), obj.GetGeneration())
	}
	if url, _, _ := unstructured.NestedString(obj.Object, "spec", "dataSource", "http", "url"); url != secondURL {
		t.Errorf("spec.dataSource.http.url = %q after the refused change", url)
	}
}
