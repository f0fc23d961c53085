package registry_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/dvcr/dvcr/registry"
)

// TestCondemnedSet: while a published set is deleted, the registry answers
// as if its entries were gone, and writing one again brings it back whole,
// whether its deletion came before or not.
func TestCondemnedSet(t *testing.T) {
	srv, hs, root := newTestRegistry(t)
	img := randomImage(t)
	if err := remote.Write(ref(t, hs, "cvi/gone:v1"), img); err != nil {
		t.Fatal(err)
	}
	manifest, _ := img.Digest()
	config, _ := img.ConfigName()
	layers, _ := img.Layers()
	first, _ := layers[0].Digest()
	second, _ := layers[1].Digest()
	set := srv.Condemned()
	set.Publish([]digest.Digest{dg(first), dg(second), dg(config), dg(manifest)}, map[string][]digest.Digest{"cvi/gone": {dg(manifest)}})
	// The collector has deleted the first layer (links, then data), not yet the rest.
	release, ok := set.ClaimBlob(dg(first))
	if !ok {
		t.Fatal("a pending blob cannot be claimed")
	}
	if err := os.RemoveAll(filepath.Join(root, "docker/registry/v2/blobs/sha256", first.Hex[:2], first.Hex)); err != nil {
		t.Fatal(err)
	}
	release(true)

	blobURL := func(repo string, d v1.Hash) string { return hs.URL + "/v2/" + repo + "/blobs/" + d.String() }
	t.Run("reads of condemned content are 404", func(t *testing.T) {
		for _, url := range []string{
			blobURL("cvi/gone", first), blobURL("cvi/gone", second), blobURL("cvi/other", second),
			hs.URL + "/v2/cvi/gone/manifests/" + manifest.String(),
		} {
			if code := head(t, url); code != http.StatusNotFound {
				t.Errorf("HEAD %s: %d, want 404", url, code)
			}
		}
	})
	t.Run("a mount from a condemned blob is a plain upload", func(t *testing.T) {
		resp := send(t, http.MethodPost, hs.URL+"/v2/cvi/new/blobs/uploads/?mount="+second.String()+"&from=cvi/gone", nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Errorf("mount: %d, want 202 (upload started)", resp.StatusCode)
		}
	})
	t.Run("a manifest referencing a condemned blob is refused", func(t *testing.T) {
		raw, _ := img.RawManifest()
		resp := send(t, http.MethodPut, hs.URL+"/v2/cvi/gone/manifests/v2", raw, "Content-Type", mustMediaType(t, img))
		var body struct{ Errors []struct{ Code string } }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode != http.StatusBadRequest || len(body.Errors) == 0 || body.Errors[0].Code != "MANIFEST_BLOB_UNKNOWN" {
			t.Errorf("PUT manifest: %d %+v, want 400 MANIFEST_BLOB_UNKNOWN", resp.StatusCode, body)
		}
	})
	t.Run("pushing the content again brings it back", func(t *testing.T) {
		if err := remote.Write(ref(t, hs, "cvi/again:v1"), img); err != nil {
			t.Fatalf("push again: %v", err)
		}
		for _, d := range []v1.Hash{first, second, config, manifest} {
			if release, ok := set.ClaimBlob(dg(d)); ok {
				release(false)
				t.Errorf("blob %s is still condemned after it was pushed again", d)
			}
		}
		set.Clear()
		if err := srv.ResetCaches(); err != nil {
			t.Fatal(err)
		}
		assertPull(t, ref(t, hs, "cvi/again:v1"), img)
	})
}

func dg(h v1.Hash) digest.Digest { return digest.Digest(h.String()) }

func mustMediaType(t *testing.T, img v1.Image) string {
	t.Helper()
	mt, err := img.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	return string(mt)
}

func send(t *testing.T, method, url string, body []byte, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

// TestWriteTracker: the repositories written to while a tracker runs are
// recorded by name; a gate that cannot name them says so.
func TestWriteTracker(t *testing.T) {
	srv, hs, _ := newTestRegistry(t)
	before := srv.Gate().TrackWrites()
	if err := remote.Write(ref(t, hs, "cvi/written:v1"), randomImage(t)); err != nil {
		t.Fatal(err)
	}
	repos, all := before.Stop()
	if _, ok := repos["cvi/written"]; !ok || all || len(repos) != 1 {
		t.Errorf("tracked %v (all %v), want exactly cvi/written", repos, all)
	}
	after := srv.Gate().TrackWrites()
	if code := head(t, hs.URL+"/v2/cvi/written/manifests/v1"); code != http.StatusOK {
		t.Fatalf("HEAD: %d", code)
	}
	if repos, all := after.Stop(); len(repos) != 0 || all {
		t.Errorf("a read was tracked: %v (all %v)", repos, all)
	}
	unnamed := registry.NewGate(time.Second)
	tr := unnamed.TrackWrites()
	h := unnamed.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPut, "/v2/cvi/x/manifests/v1", nil))
	if _, all := tr.Stop(); !all {
		t.Error("a write the gate cannot name must count as a write to every repository")
	}
}
