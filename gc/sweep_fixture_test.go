package gc

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/manifest/ocischema"
	diststorage "github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/dvcr/dvcr/storage"
)

// sweepFixture is a registry storage in a temporary directory, filled
// through distribution's own storage API.
type sweepFixture struct {
	t      *testing.T
	ctx    context.Context
	dir    string
	driver storagedriver.StorageDriver
	ns     distribution.Namespace
	sizes  map[digest.Digest]int64
}

func newSweepFixture(t *testing.T) *sweepFixture {
	t.Helper()
	return newSweepFixtureAt(t, t.TempDir())
}

// newSweepFixtureAt is newSweepFixture with its storage root at dir.
func newSweepFixtureAt(t *testing.T, dir string) *sweepFixture {
	t.Helper()
	ctx := context.Background()
	driver, err := filesystem.FromParameters(map[string]any{"rootdirectory": dir})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := diststorage.NewRegistry(ctx, driver, diststorage.EnableDelete)
	if err != nil {
		t.Fatal(err)
	}
	return &sweepFixture{t: t, ctx: ctx, dir: dir, driver: driver, ns: ns, sizes: map[digest.Digest]int64{}}
}

func (f *sweepFixture) repo(name string) distribution.Repository {
	f.t.Helper()
	named, err := reference.WithName(name)
	if err != nil {
		f.t.Fatal(err)
	}
	repo, err := f.ns.Repository(f.ctx, named)
	if err != nil {
		f.t.Fatal(err)
	}
	return repo
}

// blob pushes a layer blob into repo.
func (f *sweepFixture) blob(repo, content string) v1.Descriptor {
	f.t.Helper()
	return f.putBlob(repo, v1.MediaTypeImageLayerGzip, []byte(content))
}

func (f *sweepFixture) putBlob(repo, mediaType string, content []byte) v1.Descriptor {
	f.t.Helper()
	desc, err := f.repo(repo).Blobs(f.ctx).Put(f.ctx, mediaType, content)
	if err != nil {
		f.t.Fatal(err)
	}
	f.sizes[desc.Digest] = int64(len(content))
	return desc
}

// image pushes an OCI image of the given layer contents, with a config
// unique to repo and layers, and tags it unless tag is empty.
func (f *sweepFixture) image(repo, tag string, layers ...string) (manifest v1.Descriptor, config v1.Descriptor, descs []v1.Descriptor) {
	f.t.Helper()
	for _, l := range layers {
		descs = append(descs, f.blob(repo, l))
	}
	config = f.putBlob(repo, v1.MediaTypeImageConfig, []byte(fmt.Sprintf(`{"repo":%q,"layers":%q}`, repo, layers)))
	m, err := ocischema.FromStruct(ocischema.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageManifest,
		Config:    config,
		Layers:    descs,
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return f.putManifest(repo, tag, m, v1.MediaTypeImageManifest), config, descs
}

// rawManifest pushes a manifest given as JSON.
func (f *sweepFixture) rawManifest(repo, tag, mediaType string, payload []byte) v1.Descriptor {
	f.t.Helper()
	m, _, err := distribution.UnmarshalManifest(mediaType, payload)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.putManifest(repo, tag, m, mediaType)
}

func (f *sweepFixture) index(repo, tag string, children ...v1.Descriptor) v1.Descriptor {
	f.t.Helper()
	idx, err := ocischema.FromDescriptors(children, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.putManifest(repo, tag, idx, v1.MediaTypeImageIndex)
}

func (f *sweepFixture) putManifest(repo, tag string, m distribution.Manifest, mediaType string) v1.Descriptor {
	f.t.Helper()
	r := f.repo(repo)
	ms, err := r.Manifests(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	d, err := ms.Put(f.ctx, m)
	if err != nil {
		f.t.Fatal(err)
	}
	_, payload, err := m.Payload()
	if err != nil {
		f.t.Fatal(err)
	}
	f.sizes[d] = int64(len(payload))
	desc := v1.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(payload))}
	if tag != "" {
		if err := r.Tags(f.ctx).Tag(f.ctx, tag, desc); err != nil {
			f.t.Fatal(err)
		}
	}
	return desc
}

// age moves the modification time of everything in storage back by d.
func (f *sweepFixture) age(d time.Duration) {
	f.t.Helper()
	err := filepath.WalkDir(f.dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		return os.Chtimes(p, fi.ModTime().Add(-d), fi.ModTime().Add(-d))
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *sweepFixture) exists(p string) bool {
	f.t.Helper()
	_, err := f.driver.Stat(f.ctx, p)
	if err != nil && !sweepNotFound(err) {
		f.t.Fatal(err)
	}
	return err == nil
}

func (f *sweepFixture) hasBlob(d digest.Digest) bool { return f.exists(storage.BlobData(d)) }

func (f *sweepFixture) hasRevision(repo string, d digest.Digest) bool {
	return f.exists(storage.RevisionLink(repo, d))
}

// files lists every file in storage with its size, to check that nothing changed.
func (f *sweepFixture) files() []string {
	f.t.Helper()
	var out []string
	err := filepath.WalkDir(f.dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		out = append(out, strings.TrimPrefix(p, f.dir))
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func (f *sweepFixture) size(ds ...digest.Digest) int64 {
	var n int64
	for _, d := range ds {
		n += f.sizes[d]
	}
	return n
}

func (f *sweepFixture) sweep(opts SweepOptions) (SweepStats, error) {
	return MarkAndSweep(f.ctx, f.driver, opts)
}

// sweepCase is one case of TestMarkAndSweep, on a fresh fixture. The cases
// live next to the tests of their concern (mark_test.go, untagged_test.go,
// blobsweep_test.go, runCases below in sweep_test.go).
type sweepCase struct {
	name string
	run  func(t *testing.T, f *sweepFixture)
}

// later is a clock past every protection of a fresh fixture: a grace
// period of 0 and an import's UploadingAge.
func later() time.Time { return time.Now().Add(UploadingAge + time.Minute) }

func sweepCheckAbort(t *testing.T, f *sweepFixture, repo string, d digest.Digest) {
	t.Helper()
	before := f.files()
	stats, err := f.sweep(SweepOptions{DeleteUntagged: true, Now: func() time.Time { return time.Now().Add(time.Minute) }})
	if err == nil {
		t.Fatal("no error")
	}
	if !strings.Contains(err.Error(), repo) || !strings.Contains(err.Error(), d.String()) {
		t.Errorf("error %q does not name %s and %s", err, repo, d)
	}
	sweepCheckFiles(t, before, f.files())
	if stats.BlobsDeleted != 0 || stats.ManifestsDeleted != 0 {
		t.Errorf("stats %+v after an abort", stats)
	}
}

func sweepCheckStats(t *testing.T, got, want SweepStats) {
	t.Helper()
	if len(got.Errors) > 0 {
		t.Errorf("errors: %q", got.Errors)
	}
	got.Errors, want.Errors = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stats\n got %+v\nwant %+v", got, want)
	}
}

func sweepCheckFiles(t *testing.T, before, after []string) {
	t.Helper()
	if strings.Join(before, "\n") != strings.Join(after, "\n") {
		t.Errorf("storage changed:\nbefore %q\n after %q", before, after)
	}
}
