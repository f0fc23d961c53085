package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/dvcr/dvcr/importer"
	"github.com/dvcr/dvcr/test/dvcrtest"
)

// TestPushPullDiskImage pushes a real qcow2 in the importers' layout to each
// kind of managed repository with skopeo, pulls it back and compares the
// disk bytes and the labels.
func TestPushPullDiskImage(t *testing.T) {
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{})
	disk := dvcrtest.MakeDisk(t, "debian", "qcow2", "64M", 256*1024)
	for _, repo := range []string{"cvi/debian-12", "vi/default/ubuntu-2204", "vd/prod/root-disk"} {
		t.Run(repo, func(t *testing.T) {
			dvcrtest.Push(t, srv, disk, repo, "latest")
			pulled := dvcrtest.Pull(t, srv, repo, "latest")
			assertSameDisk(t, disk, pulled)
		})
	}
}

func assertSameDisk(t *testing.T, disk *dvcrtest.DiskImage, layout string) {
	t.Helper()
	var man v1.Manifest
	readJSON(t, blobPath(layout, manifestDigest(t, layout)), &man)
	if len(man.Layers) != 1 {
		t.Fatalf("pulled manifest has %d layers, want 1", len(man.Layers))
	}
	if man.Layers[0].Digest != disk.Image.Layer.Digest {
		t.Errorf("layer digest %s, pushed %s", man.Layers[0].Digest, disk.Image.Layer.Digest)
	}
	var cfg v1.Image
	readJSON(t, blobPath(layout, man.Config.Digest.Encoded()), &cfg)
	if got := cfg.Config.Labels[importer.LabelFormat]; got != disk.Info.Format {
		t.Errorf("label %s = %q, want %q", importer.LabelFormat, got, disk.Info.Format)
	}
	want, err := os.ReadFile(disk.Path)
	if err != nil {
		t.Fatal(err)
	}
	name, got := untarSingle(t, blobPath(layout, man.Layers[0].Digest.Encoded()))
	if name != "disk/"+filepath.Base(disk.Path) {
		t.Errorf("layer holds %q, want disk/%s", name, filepath.Base(disk.Path))
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("pulled disk differs from the pushed one (%d vs %d bytes)", len(got), len(want))
	}
}

// TestUnmanagedRepositoryRejected: a push outside cvi/, vi/<ns>/, vd/<ns>/
// is refused with 400 NAME_INVALID, by skopeo and on the wire.
func TestUnmanagedRepositoryRejected(t *testing.T) {
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{})
	disk := dvcrtest.MakeDisk(t, "tiny", "raw", "1M", 4096)
	out, err := dvcrtest.SkopeoErr(t, "copy", "--dest-tls-verify=false", disk.OCIRef(), srv.Ref("foo/bar", "latest"))
	if err == nil {
		t.Fatalf("push to foo/bar succeeded:\n%s", out)
	}
	for _, repo := range []string{"foo/bar", "cvi/a/b", "vi/only-name", "vd/bad.ns/x", "vi/ns/bad_name"} {
		t.Run(repo, func(t *testing.T) {
			resp, err := http.Post(srv.URL()+"/v2/"+repo+"/blobs/uploads/", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"NAME_INVALID"`) {
				t.Fatalf("POST %s: %d %s, want 400 NAME_INVALID", repo, resp.StatusCode, body)
			}
		})
	}
}

func manifestDigest(t *testing.T, layout string) string {
	t.Helper()
	var idx v1.Index
	readJSON(t, filepath.Join(layout, "index.json"), &idx)
	if len(idx.Manifests) != 1 {
		t.Fatalf("%s: %d manifests, want 1", layout, len(idx.Manifests))
	}
	return idx.Manifests[0].Digest.Encoded()
}

func blobPath(layout, encoded string) string {
	return filepath.Join(layout, "blobs", "sha256", encoded)
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// untarSingle reads the only file of a tar layer.
func untarSingle(t *testing.T, path string) (string, []byte) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	hdr, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(tr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Fatalf("layer holds more than one file (%v)", err)
	}
	return hdr.Name, data
}
