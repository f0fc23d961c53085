package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dvcr/dvcr/gc"
	"github.com/dvcr/dvcr/test/dvcrtest"
	"github.com/dvcr/dvcr/test/envtest"
)

// gcEnv is a real API server and a real dvcr serve that reaches it through
// KUBECONFIG, as it would through its service account in a cluster.
type gcEnv struct {
	cluster    *envtest.Cluster
	srv        *dvcrtest.Server
	kubeconfig string
}

func newGCEnv(t *testing.T, dvcrSection string, env ...string) *gcEnv {
	t.Helper()
	cluster := envtest.Start(t)
	kubeconfig := cluster.Kubeconfig(t)
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{
		DVCR:  dvcrSection,
		Env:   append([]string{"KUBECONFIG=" + kubeconfig}, env...),
		Debug: true,
	})
	return &gcEnv{cluster: cluster, srv: srv, kubeconfig: kubeconfig}
}

const noGrace = "  gc:\n    gracePeriod: 0s\n    drainTimeout: 30s\n"

func (e *gcEnv) cleaner(t *testing.T, args ...string) dvcrtest.CleanerResult {
	t.Helper()
	return dvcrtest.Cleaner(t, append([]string{"--config", e.srv.ConfigPath, "--kubeconfig", e.kubeconfig}, args...)...)
}

func (e *gcEnv) run(t *testing.T) (gc.Result, dvcrtest.CleanerResult) {
	t.Helper()
	res := e.cleaner(t, "gc", "run", "--yes", "-o", "json")
	var rec gc.Result
	if err := json.Unmarshal([]byte(res.Stdout), &rec); err != nil {
		t.Fatalf("gc run -o json: %v\nstdout:\n%s\nstderr:\n%s", err, res.Stdout, res.Stderr)
	}
	return rec, res
}

func deletedRepos(r gc.Result) string {
	var out []string
	for _, d := range r.Deleted {
		out = append(out, d.Repository)
	}
	return strings.Join(out, " ")
}

// TestGCRunSeedScenario: the documented cleanup through the running server.
func TestGCRunSeedScenario(t *testing.T) {
	e := newGCEnv(t, noGrace)
	shared := dvcrtest.MakeDisk(t, "shared", "qcow2", "16M", 128*1024)
	unique := map[string]*dvcrtest.DiskImage{
		"cvi/debian-12":             dvcrtest.MakeDisk(t, "debian", "qcow2", "16M", 256*1024),
		"vd/default/debian-10-root": dvcrtest.MakeDisk(t, "root", "raw", "2M", 512*1024),
		"vi/default/ubuntu-2204":    dvcrtest.MakeDisk(t, "ubuntu", "vmdk", "16M", 256*1024),
	}
	var wantFreed int64
	for repo, disk := range unique {
		dvcrtest.Push(t, e.srv, disk, repo, "latest")
		wantFreed += disk.Image.Layer.Size
	}
	live := []string{"cvi/alpine", "vi/default/win-11", "vd/default/provisioning"}
	dvcrtest.Push(t, e.srv, shared, "cvi/debian-12", "shared") // the same layer in a deleted image...
	for _, repo := range live {
		dvcrtest.Push(t, e.srv, shared, repo, "latest") // ...and in live ones
	}
	e.cluster.CreateCVI(t, "alpine")
	e.cluster.CreateVI(t, "default", "win-11")
	e.cluster.CreateVD(t, "default", "debian-10-root", "Ready")
	e.cluster.CreateVD(t, "default", "provisioning", "Provisioning")

	rec, out := e.run(t)
	if out.ExitCode != 0 || !rec.Succeeded() || len(rec.Warnings) > 0 {
		t.Fatalf("gc run: exit %d, record %+v\n%s", out.ExitCode, rec, out.Stderr)
	}
	if got, want := deletedRepos(rec), "cvi/debian-12 vd/default/debian-10-root vi/default/ubuntu-2204"; got != want {
		t.Fatalf("deleted %q, want %q", got, want)
	}
	if rec.Freed < wantFreed {
		t.Errorf("freed %d bytes, want at least the %d bytes of the deleted unique layers", rec.Freed, wantFreed)
	}
	if !strings.HasPrefix(rec.Message, "Freed space after cleanup: ") || !strings.Contains(out.Stderr, "mark") {
		t.Errorf("message %q; progress:\n%s", rec.Message, out.Stderr)
	}
	for _, repo := range live {
		assertSameDisk(t, shared, dvcrtest.Pull(t, e.srv, repo, "latest"))
	}
	for repo := range unique {
		if _, err := dvcrtest.SkopeoErr(t, "inspect", "--tls-verify=false", e.srv.Ref(repo, "latest")); err == nil {
			t.Errorf("%s still pulls after gc", repo)
		}
	}
	t.Run("status", func(t *testing.T) {
		st := e.cleaner(t, "gc", "status")
		if st.ExitCode != 0 || !strings.Contains(st.Stdout, "success") || !strings.Contains(st.Stdout, "manual") {
			t.Fatalf("gc status:\n%s\n%s", st.Stdout, st.Stderr)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		body := httpGet(t, e.srv.MetricsURL(t))
		for _, m := range []string{`dvcr_gc_runs_total{result="success"} 1`, "dvcr_gc_deleted_images_total{kind=\"vd\"} 1", "dvcr_registry_readonly 0", "dvcr_gc_last_success_timestamp_seconds", "registry_",
			"rest_client_requests_total", "go_goroutines"} { // client-go's requests through controller-runtime's registry; the runtime's once
			if !strings.Contains(body, m) {
				t.Errorf("metrics lack %q", m)
			}
		}
	})
	t.Run("push again without restart", func(t *testing.T) {
		// The deleted image's blobs are gone from storage; the same image
		// pushed again must be uploaded whole, not skipped on a stale cache.
		disk := unique["cvi/debian-12"]
		dvcrtest.Push(t, e.srv, disk, "cvi/debian-12-again", "latest")
		assertSameDisk(t, disk, dvcrtest.Pull(t, e.srv, "cvi/debian-12-again", "latest"))
	})
}

// TestGCWritesDuringWindow: a push during the run gets 503 + Retry-After,
// pulls keep working, and the push succeeds once the run ends.
func TestGCWritesDuringWindow(t *testing.T) {
	e := newGCEnv(t, noGrace)
	disk := dvcrtest.MakeDisk(t, "live", "raw", "1M", 4096)
	dvcrtest.Push(t, e.srv, disk, "cvi/live", "latest")
	e.cluster.CreateCVI(t, "live")
	// A write in flight holds the run in its drain phase: the window is open.
	upload := dvcrtest.StartSlowUpload(t, e.srv.URL(), "vi/default/slow")
	done := make(chan dvcrtest.CleanerResult, 1)
	go func() { done <- e.cleaner(t, "gc", "run", "--yes") }()
	waitReadOnly(t, e.srv.URL())

	resp, err := http.Post(e.srv.URL()+"/v2/cvi/new/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "UNAVAILABLE") {
		t.Fatalf("push during gc: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	assertSameDisk(t, disk, dvcrtest.Pull(t, e.srv, "cvi/live", "latest"))
	if st := e.cleaner(t, "gc", "status"); !strings.Contains(st.Stdout, "in progress") {
		t.Errorf("gc status during a run:\n%s", st.Stdout)
	}
	if _, err := dvcrtest.SkopeoErr(t, "copy", "--preserve-digests", "--dest-tls-verify=false", disk.OCIRef(), e.srv.Ref("cvi/new", "latest")); err == nil {
		t.Fatal("skopeo push during gc succeeded")
	}
	if status := upload.Finish(); status != http.StatusCreated {
		t.Fatalf("upload in flight when gc started: %d, want 201", status)
	}
	if res := <-done; res.ExitCode != 0 {
		t.Fatalf("gc run: %s\n%s", res.Stdout, res.Stderr)
	}
	dvcrtest.Push(t, e.srv, disk, "cvi/new", "latest") // the client's retry after the window
}

// waitReadOnly polls until writes are refused.
func waitReadOnly(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest(http.MethodDelete, base+"/v2/cvi/probe/manifests/sha256:0000000000000000000000000000000000000000000000000000000000000000", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the registry did not become read-only")
}

// TestGCGracePeriod: layers pushed just before a run survive it, so the
// manifest pushed after the run is accepted.
func TestGCGracePeriod(t *testing.T) {
	e := newGCEnv(t, "  gc:\n    gracePeriod: 1h\n")
	disk := dvcrtest.MakeDisk(t, "fresh", "raw", "1M", 64*1024)
	pushBlobs(t, e.srv.URL(), "vi/default/fresh", disk)
	if rec, out := e.run(t); !rec.Succeeded() {
		t.Fatalf("gc run: %+v\n%s", rec, out.Stderr)
	}
	putManifest(t, e.srv.URL(), "vi/default/fresh", disk)
	assertSameDisk(t, disk, dvcrtest.Pull(t, e.srv, "vi/default/fresh", "latest"))
}

// TestGCClusterFailure: when the resources cannot be listed nothing is
// deleted, the run fails, and the registry is writable again.
func TestGCClusterFailure(t *testing.T) {
	e := newGCEnv(t, noGrace)
	disk := dvcrtest.MakeDisk(t, "orphan", "raw", "1M", 4096)
	dvcrtest.Push(t, e.srv, disk, "cvi/orphan", "latest")
	check := func(t *testing.T, want string) {
		rec, out := e.run(t)
		if out.ExitCode == 0 || rec.Succeeded() || len(rec.Deleted) != 0 || !strings.Contains(rec.Error, want) {
			t.Fatalf("gc run: exit %d, record %+v", out.ExitCode, rec)
		}
		assertSameDisk(t, disk, dvcrtest.Pull(t, e.srv, "cvi/orphan", "latest"))
		dvcrtest.Push(t, e.srv, disk, "cvi/after-failure", "latest") // read-write again
	}
	t.Run("forbidden", func(t *testing.T) {
		swapKubeconfig(t, e, e.cluster.KubeconfigFor(t, "nobody"))
		check(t, "forbidden")
	})
	t.Run("api server down", func(t *testing.T) {
		if err := e.cluster.Stop(); err != nil {
			t.Fatal(err)
		}
		check(t, "ClusterVirtualImage")
	})
}

// swapKubeconfig makes the server (which reads $KUBECONFIG at each run)
// and the CLI act as another user until the test ends.
func swapKubeconfig(t *testing.T, e *gcEnv, other string) {
	t.Helper()
	data, err := os.ReadFile(other)
	if err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(e.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.kubeconfig, data, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.WriteFile(e.kubeconfig, orig, 0o600) })
}

// TestGCEmptyRegistry: a run on an empty registry succeeds.
func TestGCEmptyRegistry(t *testing.T) {
	e := newGCEnv(t, noGrace)
	if rec, out := e.run(t); out.ExitCode != 0 || !rec.Succeeded() || len(rec.Deleted) != 0 {
		t.Fatalf("gc run on an empty registry: %+v\n%s", rec, out.Stderr)
	}
}

// TestGCSchedule: the schedule triggers runs by itself.
func TestGCSchedule(t *testing.T) {
	e := newGCEnv(t, "  gc:\n    schedule: \"@every 1s\"\n    gracePeriod: 0s\n")
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		st := e.cleaner(t, "gc", "status", "-o", "json")
		var recs []gc.Result
		_ = json.Unmarshal([]byte(st.Stdout), &recs)
		if len(recs) > 0 && recs[0].Trigger == "schedule" && recs[0].Succeeded() {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("no scheduled run recorded within 30s:\n%s", e.srv.Stderr())
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// pushBlobs uploads the image's config and layer, but not its manifest.
func pushBlobs(t *testing.T, base, repo string, disk *dvcrtest.DiskImage) {
	t.Helper()
	for _, d := range []string{disk.Image.Config.Digest.Encoded(), disk.Image.Layer.Digest.Encoded()} {
		data, err := os.ReadFile(filepath.Join(disk.Layout, "blobs", "sha256", d))
		if err != nil {
			t.Fatal(err)
		}
		dvcrtest.UploadBlob(t, base, repo, data)
	}
}

func putManifest(t *testing.T, base, repo string, disk *dvcrtest.DiskImage) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, base+"/v2/"+repo+"/manifests/latest", strings.NewReader(string(disk.Image.ManifestBytes)))
	req.Header.Set("Content-Type", disk.Image.Manifest.MediaType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("manifest push after gc: %s %s", resp.Status, body)
	}
}
