package verify

import (
	"context"
	"encoding/json"
	"io"
	"path"
	"sync"
	"testing"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/dvcr/dvcr/storage"
)

// duringRun is a driver that runs a change of the store once, at the first
// blob read: after the listing, before the repositories are read, as an
// import or a collection beside a verify would.
type duringRun struct {
	storagedriver.StorageDriver
	once   sync.Once
	change func()
}

func (d *duringRun) Reader(ctx context.Context, p string, offset int64) (io.ReadCloser, error) {
	d.once.Do(d.change)
	return d.StorageDriver.Reader(ctx, p, offset)
}

// TestWritesDuringRun: what the registry's own writes change while a verify
// runs is not reported as damage; damage still is.
func TestWritesDuringRun(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name   string
		change func(t *testing.T, f *fixture)
		ok     bool
	}{
		{"an import writes a new image", func(t *testing.T, f *fixture) { f.importImage(t, "cvi/new") }, true},
		{"a collection deletes an image", func(t *testing.T, f *fixture) {
			must(t, f.driver.Delete(ctx, storage.RepositoryDir("vi/default/beta")))
		}, true},
		{"a collection deletes an unreferenced blob", func(t *testing.T, f *fixture) {
			must(t, f.driver.Delete(ctx, storage.BlobDir(f.stray)))
		}, true},
		{"a referenced blob disappears", func(t *testing.T, f *fixture) {
			must(t, f.driver.Delete(ctx, storage.BlobData(f.layer)))
		}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.stray = f.putBlob(t, []byte("an unreferenced blob the collector will take"))
			drv := &duringRun{StorageDriver: f.driver, change: func() { tt.change(t, f) }}
			res, err := Run(ctx, drv, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got := res.OK(); got != tt.ok {
				data, _ := json.MarshalIndent(res, "", "  ")
				t.Errorf("result %s, want ok=%v:\n%s", res.Result, tt.ok, data)
			}
		})
	}
}

// importImage writes a new image into repo as an import does: blobs,
// links, then the tag.
func (f *fixture) importImage(t *testing.T, repo string) {
	t.Helper()
	cfg, data := []byte(`{"architecture":"amd64","os":"linux","new":true}`), []byte("a new disk image")
	config, layer := f.putBlob(t, cfg), f.putBlob(t, data)
	m, err := json.Marshal(v1.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageManifest,
		Config: v1.Descriptor{MediaType: v1.MediaTypeImageConfig, Digest: config, Size: int64(len(cfg))},
		Layers: []v1.Descriptor{{MediaType: v1.MediaTypeImageLayer, Digest: layer, Size: int64(len(data))}},
	})
	if err != nil {
		t.Fatal(err)
	}
	manifest := f.putBlob(t, m)
	f.link(t, layerLink(repo, config), config)
	f.link(t, layerLink(repo, layer), layer)
	f.link(t, storage.RevisionLink(repo, manifest), manifest)
	f.link(t, path.Join(storage.RepositoryDir(repo), "_manifests/tags/latest/current/link"), manifest)
}
