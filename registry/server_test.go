package registry_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/dvcr/dvcr/registry"
	"github.com/dvcr/dvcr/test/dvcrtest"
)

// newTestRegistry serves a real registry on filesystem storage over loopback HTTP.
func newTestRegistry(t *testing.T) (*registry.Server, *httptest.Server, string) {
	t.Helper()
	root := t.TempDir()
	srv := dvcrtest.NewRegistry(t, "filesystem: {rootdirectory: "+root+"}", "")
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return srv, hs, root
}

func ref(t *testing.T, hs *httptest.Server, repo string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(strings.TrimPrefix(hs.URL, "http://")+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func randomImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(64*1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// noRetry makes go-containerregistry report the first 503 instead of retrying.
var noRetry = remote.WithRetryStatusCodes()

// TestReadOnlyWindow walks a registry through the read-only window with a
// real client: writes refused with 503 + Retry-After, reads served, an
// upload started before the switch finishing, and writes accepted again
// after leaving without any restart.
func TestReadOnlyWindow(t *testing.T) {
	srv, hs, _ := newTestRegistry(t)
	live := ref(t, hs, "cvi/live:v1")
	img := randomImage(t)
	if err := remote.Write(live, img); err != nil {
		t.Fatal(err)
	}

	upload := dvcrtest.StartSlowUpload(t, hs.URL, "vi/ns/slow")
	waitFor(t, "the upload to reach the registry", func() bool { return len(srv.Gate().InFlight()) == 1 })
	entered := make(chan error, 1)
	var hold *registry.Hold
	go func() {
		var err error
		hold, err = srv.Gate().Enter(context.Background(), "test", 30*time.Second)
		entered <- err
	}()
	waitFor(t, "read-only", srv.Gate().ReadOnly)
	select {
	case err := <-entered:
		t.Fatalf("Enter returned (%v) while an upload was in flight", err)
	case <-time.After(200 * time.Millisecond):
	}

	t.Run("write refused with 503", func(t *testing.T) { assertRefused(t, hs.URL+"/v2/cvi/new/blobs/uploads/") })
	t.Run("client push fails", func(t *testing.T) {
		err := remote.Write(ref(t, hs, "cvi/new:v1"), randomImage(t), noRetry)
		if err == nil || !strings.Contains(err.Error(), "UNAVAILABLE") {
			t.Fatalf("push during read-only: %v, want UNAVAILABLE", err)
		}
	})
	t.Run("pull works", func(t *testing.T) { assertPull(t, live, img) })

	if status := upload.Finish(); status != http.StatusCreated {
		t.Fatalf("upload started before the switch: status %d, want 201", status)
	}
	if err := <-entered; err != nil {
		t.Fatalf("Enter after the in-flight upload finished: %v", err)
	}
	hold.Release()
	if srv.Gate().ReadOnly() {
		t.Fatal("still read-only after Release")
	}
	if err := remote.Write(ref(t, hs, "cvi/new:v1"), randomImage(t), noRetry); err != nil {
		t.Fatalf("push after leaving read-only: %v", err)
	}
}

func assertRefused(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Post(url, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", resp.StatusCode)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After header")
	}
	if !strings.Contains(string(body), `"code":"UNAVAILABLE"`) {
		t.Errorf("body %s, want an OCI UNAVAILABLE error", body)
	}
}

func assertPull(t *testing.T, r name.Reference, want v1.Image) {
	t.Helper()
	got, err := remote.Image(r, noRetry)
	if err != nil {
		t.Fatalf("pull %s: %v", r, err)
	}
	gd, _ := got.Digest()
	wd, _ := want.Digest()
	if gd != wd {
		t.Fatalf("pulled %s, want %s", gd, wd)
	}
	layers, err := got.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatalf("reading layer: %v", err)
		}
		rc.Close()
	}
}

// TestResetCachesAfterBlobDeletion: once a blob is deleted underneath the
// registry, the blob descriptor cache still claims it exists; ResetCaches
// drops that claim without a restart, and the blob can be pushed again.
func TestResetCachesAfterBlobDeletion(t *testing.T) {
	srv, hs, root := newTestRegistry(t)
	img := randomImage(t)
	if err := remote.Write(ref(t, hs, "cvi/a:v1"), img); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	dgst, _ := layers[0].Digest()
	blobURL := hs.URL + "/v2/cvi/a/blobs/" + dgst.String()
	if code := head(t, blobURL); code != http.StatusOK {
		t.Fatalf("HEAD blob: %d", code)
	}
	blobDir := filepath.Join(root, "docker/registry/v2/blobs/sha256", dgst.Hex[:2], dgst.Hex)
	if err := os.RemoveAll(blobDir); err != nil {
		t.Fatal(err)
	}
	if code := head(t, blobURL); code != http.StatusOK {
		t.Logf("HEAD after deletion without reset: %d (cache already dropped the entry)", code)
	}
	if err := srv.ResetCaches(); err != nil {
		t.Fatal(err)
	}
	if code := head(t, blobURL); code != http.StatusNotFound {
		t.Fatalf("HEAD after ResetCaches: %d, want 404", code)
	}
	if err := remote.Write(ref(t, hs, "cvi/b:v1"), img); err != nil {
		t.Fatalf("push again: %v", err)
	}
	assertPull(t, ref(t, hs, "cvi/b:v1"), img)
}

func head(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Head(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
