package e2e

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/dvcr/dvcr/test/dvcrtest"
	"github.com/dvcr/dvcr/test/envtest"
)

// fullMessage is what a write refused for lack of space says, on the
// test's 64 MiB volume.
var fullMessage = regexp.MustCompile(`DVCR storage is full: [0-9.]+[KM]?i?B free of 64\.0MiB; run garbage collection or enlarge the volume`)

// TestFullVolume: dvcr serve's storage on a 64 MiB tmpfs. An import that
// does not fit is refused 507 and `dvcr import`, an upload and an image's
// status say so in words, with nothing of the upload kept; with the volume
// then filled to its last byte, a garbage collection still runs and frees
// the deleted image's space; /metrics exports the volume's space.
func TestFullVolume(t *testing.T) {
	vol := mountTmpfs(t, "64m")
	cluster := envtest.Start(t)
	kubeconfig := cluster.Kubeconfig(t)
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{
		DataDir: filepath.Join(vol, "data"),
		Debug:   true,
		DVCR:    "  registryHost: dvcr.test\n  provisioning:\n    enabled: true\n" + noGrace,
		Env:     []string{"KUBECONFIG=" + kubeconfig, "POD_NAMESPACE=default"},
	})
	e := &provEnv{cluster: cluster, srv: srv, kubeconfig: kubeconfig}
	files := newFileServer(t, 0)
	big := randomData(t, 48<<20)
	e.apply(t, httpCVI("old", files.add("old.raw", randomData(t, 24<<20))))
	e.waitPhase(t, "", "old", "Ready", 2*time.Minute)

	t.Run("dvcr import", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "big.raw")
		if err := os.WriteFile(file, big, 0o644); err != nil {
			t.Fatal(err)
		}
		run := dvcrtest.Import(t, srv, file, "cvi/big")
		if run.ExitCode == 0 || !fullMessage.MatchString(run.Stderr) {
			t.Fatalf("dvcr import: exit %d, want the full volume in words:\n%s", run.ExitCode, run.Stderr)
		}
		t.Logf("dvcr import says: %s", strings.TrimSpace(run.Stderr[strings.LastIndex(strings.TrimSpace(run.Stderr), "\n")+1:]))
		assertNoUploadData(t, srv.DataDir)
	})
	t.Run("image status", func(t *testing.T) {
		e.apply(t, httpCVI("big", files.add("big.raw", big)))
		obj := e.waitFor(t, "", "big", "told the volume is full", 2*time.Minute, func(o *unstructured.Unstructured) bool {
			_, msg := condition(o, "Ready")
			return fullMessage.MatchString(msg)
		})
		_, msg := condition(obj, "Ready")
		t.Logf("status: phase %s, %s", status(obj, "phase"), msg)
		deleteCVI(t, e, "big") // its retries would keep filling the volume
		assertNoUploadData(t, srv.DataDir)
	})
	t.Run("upload", func(t *testing.T) {
		e.apply(t, "apiVersion: virtualization.deckhouse.io/v1alpha2\nkind: ClusterVirtualImage\nmetadata:\n  name: up\nspec:\n  dataSource:\n    type: Upload\n")
		url := status(e.waitPhase(t, "", "up", "WaitForUserUpload", time.Minute), "imageUploadURLs", "inCluster")
		// Spooled whole (30 MiB fit), then the import does not.
		code, body := put(t, url, big[:30<<20])
		if code != http.StatusInsufficientStorage || !fullMessage.MatchString(body) {
			t.Fatalf("upload: %d %q, want 507 with the full volume in words", code, body)
		}
		deleteCVI(t, e, "up")
	})

	deleteCVI(t, e, "old")
	filler := fillVolume(t, vol)
	if free := freeBytes(t, vol); free != 0 {
		t.Fatalf("%d bytes still free after filling the volume", free)
	}
	if m := httpGet(t, srv.MetricsURL(t)); !strings.Contains(m, "dvcr_storage_free_bytes 0\n") || !strings.Contains(m, "dvcr_storage_size_bytes 6.7108864e+07\n") {
		t.Errorf("metrics lack the volume's space:\n%s", grepLines(m, "dvcr_storage_"))
	} else if strings.Contains(m, "dvcr_storage_total_bytes") {
		t.Errorf("the volume's size is exported twice (SPEC names dvcr_storage_size_bytes only):\n%s", grepLines(m, "dvcr_storage_"))
	}
	res := dvcrtest.Cleaner(t, "--config", srv.ConfigPath, "--kubeconfig", kubeconfig, "gc", "run", "--yes")
	free := freeBytes(t, vol)
	t.Logf("gc run with 0 bytes free (filler %d bytes): exit %d, %d bytes free after\n%s%s", filler, res.ExitCode, free, res.Stdout, res.Stderr)
	if res.ExitCode != 0 || !strings.Contains(res.Stdout, "Freed space after cleanup") || free < 24<<20 {
		t.Fatalf("gc run on a full volume: exit %d, %d bytes free after\n%s\n%s", res.ExitCode, free, res.Stdout, res.Stderr)
	}
	if st, err := os.Stat(filepath.Join(srv.DataDir, "dvcr/gc/reserve")); err != nil || st.Size() != 1<<20 {
		t.Errorf("the run's reserve was not recreated: %v", err)
	}
}

// mountTmpfs mounts a tmpfs of size (as mount's size=) for the test.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "vol")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Fatalf("mount -t tmpfs -o size=%s (the test needs root): %v", size, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
		}
	})
	return dir
}

// fillVolume writes a file outside the registry's tree until the volume
// has no byte left, and returns its size.
func fillVolume(t *testing.T, vol string) int64 {
	t.Helper()
	f, err := os.Create(filepath.Join(vol, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := io.Copy(f, zeros{})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the volume: %v", err)
	}
	return n
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// freeBytes is the space available on the volume (df's Avail).
func freeBytes(t *testing.T, dir string) uint64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Bavail * uint64(st.Bsize)
}

// assertNoUploadData checks that no upload of the registry holds data.
func assertNoUploadData(t *testing.T, root string) {
	t.Helper()
	var left []string
	_ = filepath.Walk(filepath.Join(root, "docker/registry/v2/repositories"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && strings.Contains(p, "/_uploads/") && fi.Size() > 0 && filepath.Base(p) == "data" {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("upload data kept after a refusal for lack of space: %v", left)
	}
}

// put sends data to an upload URL and returns the status and body.
func put(t *testing.T, url string, data []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, url, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("PUT %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func deleteCVI(t *testing.T, e *provEnv, name string) {
	t.Helper()
	if out, err := e.kubectl(t, "", "delete", "cvi", name, "--wait=true", "--timeout=60s"); err != nil {
		t.Fatalf("kubectl delete cvi %s: %v\n%s", name, err, out)
	}
}

// grepLines keeps the lines containing s.
func grepLines(text, s string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
