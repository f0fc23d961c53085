package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/dvcr/dvcr/gc"
	"github.com/dvcr/dvcr/test/dvcrtest"
	"github.com/dvcr/dvcr/test/envtest"
)

// TestReplicas: three dvcr serve replicas on one S3 bucket (versitygw),
// coordinated through Leases of a real API server: an image pushed through
// one pulls from the others, an upload whose requests go to different
// replicas completes, a GC run makes every replica refuse pushes while
// pulls go on and leaves no replica with a stale view, a replica cut off
// from the API server refuses writes within the renew deadline, and a
// follower killed during a window holds nothing up.
func TestReplicas(t *testing.T) {
	e := newReplicaEnv(t, 3, gc.PauseEnv+"=3s")
	r1, r2, r3 := e.replicas[0], e.replicas[1], e.replicas[2]
	golden := dvcrtest.MakeDisk(t, "golden", "qcow2", "16M", 1<<20)
	e.cluster.CreateCVI(t, "golden")

	t.Run("push on one, pull on the others", func(t *testing.T) {
		dvcrtest.Push(t, r1.srv, golden, "cvi/golden", "latest")
		for _, r := range []*replicaProc{r2, r3} {
			assertSameDisk(t, golden, dvcrtest.Pull(t, r.srv, "cvi/golden", "latest"))
		}
	})
	t.Run("upload across replicas", func(t *testing.T) { testUploadAcrossReplicas(t, r1, r2, r3) })

	leader := e.leader(t)
	followers := e.followers(leader)
	t.Logf("leader: %s", leader.name)
	t.Run("gc run on a follower names the leader", func(t *testing.T) {
		res := e.cleaner(t, followers[0], "gc", "run", "--yes")
		if res.ExitCode == 0 || !strings.Contains(res.Stderr, "runs on replica "+leader.name) {
			t.Fatalf("gc run on %s: exit %d\n%s%s", followers[0].name, res.ExitCode, res.Stdout, res.Stderr)
		}
	})
	t.Run("upload through a follower", func(t *testing.T) { testUploadThroughFollower(t, e, followers[0]) })
	t.Run("window on every replica", func(t *testing.T) { testReplicaWindow(t, e, leader, golden) })
	t.Run("replica starting during a window joins it read-only", func(t *testing.T) {
		wait := e.startGC(t, leader)
		waitPush(t, leader, http.StatusServiceUnavailable, 20*time.Second)
		late := e.startReplica(t, "replica-late")
		if st := pushProbe(t, late); st != http.StatusServiceUnavailable {
			t.Errorf("a replica started during the window answers a push with %d", st)
		}
		if out, err := wait(); err != nil {
			t.Fatalf("gc run: %v\n%s", err, out)
		}
		waitWritable(t, late, 10*time.Second)
		late.srv.Stop(t)
	})
	t.Run("delete with every replica's caches dropped", func(t *testing.T) {
		dvcrtest.Push(t, followers[0].srv, golden, "cvi/doomed", "latest")
		if res := e.cleaner(t, followers[0], "delete", "cvi", "doomed", "--yes"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "runs on replica "+leader.name) {
			t.Fatalf("delete on a follower: exit %d\n%s", res.ExitCode, res.Stderr)
		}
		if res := e.cleaner(t, leader, "delete", "cvi", "doomed", "--yes"); res.ExitCode != 0 {
			t.Fatalf("delete on the leader: exit %d\n%s%s", res.ExitCode, res.Stdout, res.Stderr)
		}
		for _, r := range e.replicas {
			if st := manifestStatus(t, r, "cvi/doomed"); st != http.StatusNotFound {
				t.Errorf("%s: the deleted repository answers %d", r.name, st)
			}
		}
		// Pushed again through the replica that pushed it first (whose cache
		// knew its blobs), read through another.
		dvcrtest.Push(t, followers[0].srv, golden, "cvi/doomed", "latest")
		assertSameDisk(t, golden, dvcrtest.Pull(t, leader.srv, "cvi/doomed", "latest"))
	})
	t.Run("replica cut off from the API server", func(t *testing.T) {
		cut := followers[1]
		cut.proxy.cut()
		took := waitPush(t, cut, http.StatusServiceUnavailable, testRenewDeadline+2*time.Second)
		t.Logf("%s refuses writes %s after losing the API server (renew deadline %s)", cut.name, took.Round(10*time.Millisecond), testRenewDeadline)
		if st := pushProbe(t, leader); st != http.StatusAccepted {
			t.Errorf("the leader, still in contact, answers a push with %d", st)
		}
		cut.proxy.restore()
		waitWritable(t, cut, 10*time.Second)
	})
	t.Run("follower killed during the window", func(t *testing.T) {
		orphan := dvcrtest.MakeDisk(t, "orphan2", "raw", "4M", 4<<20)
		dvcrtest.Push(t, followers[0].srv, orphan, "cvi/orphan2", "latest")
		wait := e.startGC(t, leader)
		waitPush(t, followers[1], http.StatusServiceUnavailable, 20*time.Second)
		if err := followers[1].srv.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		out, err := wait()
		if err != nil || !strings.Contains(out, "orphan2") {
			t.Fatalf("gc run with a follower killed in the window: %v\n%s", err, out)
		}
		waitWritable(t, followers[0], testLeaseDuration+testMargin)
		assertSameDisk(t, golden, dvcrtest.Pull(t, followers[0].srv, "cvi/golden", "latest"))
	})
}

// testReplicaWindow: during a run every replica refuses pushes and serves
// pulls; afterwards the orphan is gone from every replica, the live image
// pulls whole from each, and the swept disk pushed again works everywhere.
func testReplicaWindow(t *testing.T, e *replicaEnv, leader *replicaProc, golden *dvcrtest.DiskImage) {
	orphan := dvcrtest.MakeDisk(t, "orphan", "raw", "4M", 4<<20)
	dvcrtest.Push(t, e.replicas[1].srv, orphan, "cvi/orphan", "latest")
	wait := e.startGC(t, leader)
	for _, r := range e.replicas {
		waitPush(t, r, http.StatusServiceUnavailable, 20*time.Second)
		if st := manifestStatus(t, r, "cvi/golden"); st != http.StatusOK {
			t.Errorf("%s: a pull during the window answers %d", r.name, st)
		}
	}
	out, err := wait()
	if err != nil || !strings.Contains(out, "orphan") || !strings.Contains(out, "every live replica refuses writes") {
		t.Fatalf("gc run: %v\n%s", err, out)
	}
	for i, r := range e.replicas {
		waitWritable(t, r, 10*time.Second)
		if st := manifestStatus(t, r, "cvi/orphan"); st != http.StatusNotFound {
			t.Errorf("%s: the swept orphan answers %d", r.name, st)
		}
		assertSameDisk(t, golden, dvcrtest.Pull(t, r.srv, "cvi/golden", "latest"))
		// The swept blobs again, through each replica, read back through
		// the next one: no replica may believe they still exist.
		repo := fmt.Sprintf("cvi/orphan-again-%d", i)
		dvcrtest.Push(t, r.srv, orphan, repo, "latest")
		assertSameDisk(t, orphan, dvcrtest.Pull(t, e.replicas[(i+1)%len(e.replicas)].srv, repo, "latest"))
	}
}

// testUploadAcrossReplicas: a chunked blob upload started on one replica,
// continued on the two others and committed on the first.
func testUploadAcrossReplicas(t *testing.T, r1, r2, r3 *replicaProc) {
	data := bytes.Repeat([]byte("dvcr"), 3<<20) // 12 MiB: two chunks of 6 MiB
	digest := fmt.Sprintf("sha256:%x", sha256.Sum256(data))
	loc := uploadStep(t, http.MethodPost, r1, "/v2/cvi/chunked/blobs/uploads/", nil, "", http.StatusAccepted)
	half := len(data) / 2
	loc = uploadStep(t, http.MethodPatch, r2, loc, data[:half], fmt.Sprintf("0-%d", half-1), http.StatusAccepted)
	loc = uploadStep(t, http.MethodPatch, r3, loc, data[half:], fmt.Sprintf("%d-%d", half, len(data)-1), http.StatusAccepted)
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	uploadStep(t, http.MethodPut, r1, loc+sep+"digest="+url.QueryEscape(digest), nil, "", http.StatusCreated)
	resp, err := http.Head(r2.srv.URL() + "/v2/cvi/chunked/blobs/" + digest)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(data)) {
		t.Fatalf("HEAD of the committed blob on %s: %d, %d bytes", r2.name, resp.StatusCode, resp.ContentLength)
	}
}

// uploadStep sends one request of a blob upload to replica r at location
// (a path, or a URL of another replica whose path is kept) and returns the
// next location's path.
func uploadStep(t *testing.T, method string, r *replicaProc, location string, body []byte, contentRange string, want int) string {
	t.Helper()
	u, err := url.Parse(location)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(method, r.srv.URL()+u.RequestURI(), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/octet-stream")
	if contentRange != "" {
		req.Header.Set("Content-Range", contentRange)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("%s %s on %s: %d, want %d\n%s", method, u.Path, r.name, resp.StatusCode, want, tail(r.srv.Stderr(), 10))
	}
	return resp.Header.Get("Location")
}

// testUploadThroughFollower: the upload URL of an image, sent to a
// follower, reaches the leader, whose controller imports it.
func testUploadThroughFollower(t *testing.T, e *replicaEnv, follower *replicaProc) {
	disk := dvcrtest.MakeDiskFile(t, t.TempDir(), "uploaded", "qcow2", "32M", 2<<20)
	data := readFile(t, disk)
	e.cluster.CreateCVI(t, "uploaded") // an Upload image
	var upload string
	deadline := time.Now().Add(time.Minute)
	for upload == "" && time.Now().Before(deadline) {
		upload = status(getCVI(t, e, "uploaded"), "imageUploadURLs", "inCluster")
		time.Sleep(100 * time.Millisecond)
	}
	u, err := url.Parse(upload)
	if err != nil || upload == "" {
		t.Fatalf("upload URL %q: %v", upload, err)
	}
	req, _ := http.NewRequest(http.MethodPut, follower.srv.URL()+u.Path, bytes.NewReader(data))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("upload through %s: HTTP %d\n%s", follower.name, resp.StatusCode, tail(follower.srv.Stderr(), 10))
	}
	for time.Now().Before(deadline) {
		if status(getCVI(t, e, "uploaded"), "phase") == "Ready" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the image uploaded through %s is not Ready: %s", follower.name, conditions(getCVI(t, e, "uploaded")))
}

func getCVI(t *testing.T, e *replicaEnv, name string) *unstructured.Unstructured {
	t.Helper()
	obj, err := e.cluster.Dynamic.Resource(envtest.CVIResource).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return obj
}
