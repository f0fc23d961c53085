package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/dvcr/dvcr/test/dvcrtest"
	"github.com/dvcr/dvcr/test/envtest"
)

// raceImages is how many ClusterVirtualImages each round imports: the
// report's 20 imports from HTTP.
const raceImages = 20

// TestProvisionRacingGC: rounds of 20 imports from HTTP with a gc run
// (gracePeriod 0s) started 0.1 … 1.5 s after them, so that the run's
// listing, mark and window fall at every stage of the imports (downloading,
// blob committed and manifest not yet written, done). Every status change
// is watched: no attempt may fail (no Failed, no ProvisioningRetrying), and
// every image ends Ready with the bytes of its source. The previous round's
// images are deleted as each round starts, so the runs have something to
// collect.
//
// The imports commit their layer a few milliseconds before their manifest,
// so few runs fall in between. Each round therefore also has the exact
// race, written over HTTP as an importer does: blobs committed into the
// repository of a live ClusterVirtualImage (type Upload, waiting, so the
// controller does not write there) before the run, the manifest after it.
func TestProvisionRacingGC(t *testing.T) {
	e := newProvEnv(t, noGrace)
	g := &gcEnv{cluster: e.cluster, srv: e.srv, kubeconfig: e.kubeconfig}
	web := newFileServer(t, 2<<20) // 0.5 s per image: the imports last ~2.5 s with 4 slots
	w := watchImages(t, e)
	var prev []string
	for round, delay := range []time.Duration{100 * time.Millisecond, 400 * time.Millisecond, 700 * time.Millisecond, time.Second, 1500 * time.Millisecond} {
		for _, name := range prev {
			deleteCVI(t, e, name)
		}
		pending := startPendingImport(t, e, round)
		names, data := applyRound(t, e, web, round)
		time.Sleep(delay)
		rec, out := g.run(t)
		if out.ExitCode != 0 || !rec.Succeeded() {
			t.Fatalf("round %d: gc run: exit %d, %+v\n%s", round, out.ExitCode, rec, out.Stderr)
		}
		pending.finish(t, e)
		names = append(names, pending.name)
		for _, name := range names[:raceImages] {
			e.waitPhase(t, "", name, "Ready", 2*time.Minute)
		}
		for i, name := range names[:raceImages] {
			if _, got := untarSingle(t, pulledLayer(t, e.srv, "cvi/"+name)); !bytes.Equal(got, data[i]) {
				t.Errorf("round %d: %s differs from its source", round, name)
			}
		}
		t.Logf("round %d: gc run %s after the imports: %d repositories deleted, sweep %+v", round, delay, len(rec.Deleted), rec.Sweep)
		prev = names
	}
	if failed := w.stop(); len(failed) > 0 {
		t.Fatalf("%d failed attempts seen:\n%s", len(failed), strings.Join(failed, "\n"))
	}
}

// pendingImport is an import whose blobs are committed and whose manifest
// is not written yet.
type pendingImport struct {
	name string
	disk *dvcrtest.DiskImage
}

// startPendingImport commits the blobs of a 1 MiB disk into the
// repository of a new ClusterVirtualImage waiting for an upload.
func startPendingImport(t *testing.T, e *provEnv, round int) *pendingImport {
	t.Helper()
	p := &pendingImport{name: fmt.Sprintf("race-%d-pending", round), disk: dvcrtest.MakeDisk(t, "pending", "raw", "1M", 1<<20)}
	e.apply(t, "apiVersion: virtualization.deckhouse.io/v1alpha2\nkind: ClusterVirtualImage\nmetadata:\n  name: "+p.name+"\nspec:\n  dataSource:\n    type: Upload\n")
	e.waitPhase(t, "", p.name, "WaitForUserUpload", time.Minute)
	pushBlobs(t, e.srv.URL(), "cvi/"+p.name, p.disk)
	return p
}

// finish writes the manifest (it must be accepted: its blobs are still
// there) and pulls the image back whole.
func (p *pendingImport) finish(t *testing.T, e *provEnv) {
	t.Helper()
	putManifest(t, e.srv.URL(), "cvi/"+p.name, p.disk)
	want, err := os.ReadFile(p.disk.Path)
	if err != nil {
		t.Fatal(err)
	}
	if _, got := untarSingle(t, pulledLayer(t, e.srv, "cvi/"+p.name)); !bytes.Equal(got, want) {
		t.Errorf("%s: the image written across the run differs from its disk", p.name)
	}
}

// applyRound creates the round's images, each from its own 1 MiB file.
func applyRound(t *testing.T, e *provEnv, web *fileServer, round int) ([]string, [][]byte) {
	t.Helper()
	var manifests []string
	names := make([]string, raceImages)
	data := make([][]byte, raceImages)
	for i := range raceImages {
		names[i] = fmt.Sprintf("race-%d-%02d", round, i)
		data[i] = randomData(t, 1<<20)
		manifests = append(manifests, httpCVI(names[i], web.add(names[i]+".raw", data[i])))
	}
	e.apply(t, joinManifests(manifests))
	return names, data
}

// imageWatch records every failed attempt a watch of the
// ClusterVirtualImages shows: a user's `kubectl get cvi -w`.
type imageWatch struct {
	w      watch.Interface
	done   chan struct{}
	mu     sync.Mutex
	failed []string
}

func watchImages(t *testing.T, e *provEnv) *imageWatch {
	t.Helper()
	wi, err := e.cluster.Dynamic.Resource(envtest.CVIResource).Watch(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("watching ClusterVirtualImages: %v", err)
	}
	iw := &imageWatch{w: wi, done: make(chan struct{})}
	go iw.record()
	t.Cleanup(wi.Stop)
	return iw
}

func (iw *imageWatch) record() {
	defer close(iw.done)
	for ev := range iw.w.ResultChan() {
		obj, ok := ev.Object.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		phase := status(obj, "phase")
		reason, msg := condition(obj, "Ready")
		if phase == "Failed" || reason == "ProvisioningRetrying" {
			iw.mu.Lock()
			iw.failed = append(iw.failed, fmt.Sprintf("%s: %s %s: %s", obj.GetName(), phase, reason, msg))
			iw.mu.Unlock()
		}
	}
}

// stop ends the watch and returns the failed attempts seen.
func (iw *imageWatch) stop() []string {
	iw.w.Stop()
	<-iw.done
	iw.mu.Lock()
	defer iw.mu.Unlock()
	return iw.failed
}
