package gc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/manifest/manifestlist"
	"github.com/distribution/distribution/v3/manifest/ocischema"
	"github.com/distribution/distribution/v3/manifest/schema2"
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
	ctx := context.Background()
	dir := t.TempDir()
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

func (f *sweepFixture) hasBlob(d digest.Digest) bool { return f.exists(blobData(d)) }

func (f *sweepFixture) hasRevision(repo string, d digest.Digest) bool {
	return f.exists(revisionLink(repo, d))
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

func TestMarkAndSweep(t *testing.T) {
	later := func() time.Time { return time.Now().Add(time.Minute) }
	tests := []struct {
		name string
		run  func(t *testing.T, f *sweepFixture)
	}{
		{
			name: "blob shared with a deleted repository survives",
			run: func(t *testing.T, f *sweepFixture) {
				keptM, keptC, keptL := f.image("vi/ns/kept", "latest", "shared", "only-kept")
				goneM, goneC, goneL := f.image("vi/ns/gone", "latest", "shared", "only-gone")
				if err := storage.RemoveRepository(f.ctx, f.driver, "vi/ns/gone"); err != nil {
					t.Fatal(err)
				}
				stats, err := f.sweep(SweepOptions{DeleteUntagged: true, Now: later})
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range []digest.Digest{keptM.Digest, keptC.Digest, keptL[0].Digest, keptL[1].Digest} {
					if !f.hasBlob(d) {
						t.Errorf("blob %s of the kept repository deleted", d)
					}
				}
				if goneL[0].Digest != keptL[0].Digest {
					t.Fatal("shared layer has different digests")
				}
				gone := []digest.Digest{goneM.Digest, goneC.Digest, goneL[1].Digest}
				for _, d := range gone {
					if f.hasBlob(d) {
						t.Errorf("blob %s only the deleted repository referenced survived", d)
					}
				}
				want := SweepStats{Repositories: 1, BlobsTotal: 7, BlobsMarked: 4, BlobsDeleted: 3, FreedBytes: f.size(gone...)}
				sweepCheckStats(t, stats, want)
			},
		},
		{
			name: "untagged manifest deleted and its unique layers swept",
			run: func(t *testing.T, f *sweepFixture) {
				oldM, oldC, oldL := f.image("vd/ns/disk", "latest", "common", "old-layer")
				newM, newC, newL := f.image("vd/ns/disk", "latest", "common", "new-layer")
				tagIndex := path.Join(storage.RepositoryDir("vd/ns/disk"), "_manifests/tags/latest/index/sha256", oldM.Digest.Encoded())
				if !f.exists(tagIndex) {
					t.Fatalf("%s: no tag history entry", tagIndex)
				}
				stats, err := f.sweep(SweepOptions{DeleteUntagged: true, Now: later})
				if err != nil {
					t.Fatal(err)
				}
				if f.hasRevision("vd/ns/disk", oldM.Digest) || f.exists(tagIndex) {
					t.Error("untagged manifest's revision or tag history entry survived")
				}
				if !f.hasRevision("vd/ns/disk", newM.Digest) {
					t.Error("tagged manifest deleted")
				}
				gone := []digest.Digest{oldM.Digest, oldC.Digest, oldL[1].Digest}
				for _, d := range gone {
					if f.hasBlob(d) {
						t.Errorf("blob %s survived", d)
					}
				}
				for _, d := range []digest.Digest{newM.Digest, newC.Digest, newL[0].Digest, newL[1].Digest} {
					if !f.hasBlob(d) {
						t.Errorf("blob %s deleted", d)
					}
				}
				layerLink := path.Join(storage.RepositoryDir("vd/ns/disk"), "_layers/sha256", oldL[1].Digest.Encoded())
				if f.exists(layerLink) {
					t.Error("layer link of a swept blob left behind")
				}
				sweepCheckStats(t, stats, SweepStats{Repositories: 1, ManifestsDeleted: 1, BlobsTotal: 7, BlobsMarked: 4, BlobsDeleted: 3, FreedBytes: f.size(gone...)})

				// The registry still serves the tag.
				ms, err := f.repo("vd/ns/disk").Manifests(f.ctx)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := ms.Get(f.ctx, newM.Digest); err != nil {
					t.Errorf("tagged manifest after the sweep: %v", err)
				}
			},
		},
		{
			name: "untagged manifest kept without DeleteUntagged",
			run: func(t *testing.T, f *sweepFixture) {
				oldM, _, oldL := f.image("vd/ns/disk", "latest", "common", "old-layer")
				f.image("vd/ns/disk", "latest", "common", "new-layer")
				before := f.files()
				stats, err := f.sweep(SweepOptions{DeleteUntagged: false, Now: later})
				if err != nil {
					t.Fatal(err)
				}
				if !f.hasRevision("vd/ns/disk", oldM.Digest) || !f.hasBlob(oldL[1].Digest) {
					t.Error("untagged manifest or its layer deleted")
				}
				sweepCheckFiles(t, before, f.files())
				sweepCheckStats(t, stats, SweepStats{Repositories: 1, BlobsTotal: 7, BlobsMarked: 7})
			},
		},
		{
			name: "untagged manifest within the grace period kept",
			run: func(t *testing.T, f *sweepFixture) {
				oldM, _, oldL := f.image("vd/ns/disk", "latest", "common", "old-layer")
				f.image("vd/ns/disk", "latest", "common", "new-layer")
				stats, err := f.sweep(SweepOptions{DeleteUntagged: true, GracePeriod: time.Hour})
				if err != nil {
					t.Fatal(err)
				}
				if !f.hasRevision("vd/ns/disk", oldM.Digest) || !f.hasBlob(oldL[1].Digest) {
					t.Error("recent untagged manifest or its layer deleted")
				}
				sweepCheckStats(t, stats, SweepStats{Repositories: 1, BlobsTotal: 7, BlobsMarked: 7})

				stats, err = f.sweep(SweepOptions{DeleteUntagged: true, GracePeriod: time.Hour, Now: func() time.Time { return time.Now().Add(2 * time.Hour) }})
				if err != nil {
					t.Fatal(err)
				}
				if f.hasRevision("vd/ns/disk", oldM.Digest) || f.hasBlob(oldL[1].Digest) {
					t.Error("untagged manifest older than the grace period kept")
				}
				if stats.ManifestsDeleted != 1 || stats.BlobsDeleted != 3 {
					t.Errorf("stats %+v, want 1 manifest and 3 blobs deleted", stats)
				}
			},
		},
		{
			name: "grace period protects a recent unreferenced blob",
			run: func(t *testing.T, f *sweepFixture) {
				f.image("cvi/image", "v1", "layer")
				f.age(48 * time.Hour)
				old := f.blob("cvi/image", "old upload")
				old2 := f.blob("cvi/other", "old upload elsewhere")
				f.age(24 * time.Hour) // old, old2: 24h, the image 72h
				fresh := f.blob("cvi/image", "upload in progress")
				opts := SweepOptions{DeleteUntagged: true, GracePeriod: 12 * time.Hour}
				stats, err := f.sweep(opts)
				if err != nil {
					t.Fatal(err)
				}
				if !f.hasBlob(fresh.Digest) {
					t.Error("fresh blob deleted")
				}
				if f.hasBlob(old.Digest) || f.hasBlob(old2.Digest) {
					t.Error("blobs older than the grace period kept")
				}
				sweepCheckStats(t, stats, SweepStats{Repositories: 1, BlobsTotal: 6, BlobsMarked: 3, BlobsDeleted: 2, BlobsKeptRecent: 1, FreedBytes: f.size(old.Digest, old2.Digest)})

				opts.Now = func() time.Time { return time.Now().Add(13 * time.Hour) }
				stats, err = f.sweep(opts)
				if err != nil {
					t.Fatal(err)
				}
				if f.hasBlob(fresh.Digest) {
					t.Error("blob kept after the grace period")
				}
				if f.exists(path.Join(storage.RepositoryDir("cvi/image"), "_layers/sha256", fresh.Digest.Encoded())) {
					t.Error("layer link of the swept blob left behind")
				}
				sweepCheckStats(t, stats, SweepStats{Repositories: 1, BlobsTotal: 4, BlobsMarked: 3, BlobsDeleted: 1, FreedBytes: f.size(fresh.Digest)})
			},
		},
		{
			name: "a recent layer link protects an old blob (mount in flight)",
			run: func(t *testing.T, f *sweepFixture) {
				d := f.blob("vi/ns/a", "mounted")
				f.image("vi/ns/b", "latest", "layer") // only repositories are scanned: b has a manifest
				f.age(48 * time.Hour)
				f.blob("vi/ns/b", "mounted") // links the existing blob into b
				stats, err := f.sweep(SweepOptions{DeleteUntagged: true, GracePeriod: time.Hour})
				if err != nil {
					t.Fatal(err)
				}
				if !f.hasBlob(d.Digest) {
					t.Error("blob linked within the grace period deleted")
				}
				sweepCheckStats(t, stats, SweepStats{Repositories: 1, BlobsTotal: 4, BlobsMarked: 3, BlobsKeptRecent: 1})
			},
		},
		{
			name: "tagged index keeps its child manifests and their layers",
			run: func(t *testing.T, f *sweepFixture) {
				amd, _, amdL := f.image("vi/ns/multi", "", "amd64-layer", "common")
				arm, _, armL := f.image("vi/ns/multi", "", "arm64-layer", "common")
				absent := v1.Descriptor{MediaType: v1.MediaTypeImageManifest, Digest: digest.FromString("not pushed"), Size: 10}
				idx := f.index("vi/ns/multi", "latest", amd, arm, absent) // sparse index
				untagged, _, untaggedL := f.image("vi/ns/multi", "", "untagged-layer")
				stats, err := f.sweep(SweepOptions{DeleteUntagged: true, Now: later})
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range []digest.Digest{idx.Digest, amd.Digest, arm.Digest, amdL[0].Digest, amdL[1].Digest, armL[0].Digest} {
					if !f.hasBlob(d) {
						t.Errorf("blob %s reached from the tagged index deleted", d)
					}
				}
				if !f.hasRevision("vi/ns/multi", amd.Digest) || !f.hasRevision("vi/ns/multi", arm.Digest) {
					t.Error("child manifest of the tagged index deleted")
				}
				if f.hasRevision("vi/ns/multi", untagged.Digest) || f.hasBlob(untaggedL[0].Digest) {
					t.Error("untagged manifest kept")
				}
				if stats.ManifestsDeleted != 1 || stats.BlobsDeleted != 3 {
					t.Errorf("stats %+v, want 1 manifest and 3 blobs deleted", stats)
				}
			},
		},
		{
			name: "docker manifest list and schema2 manifests",
			run: func(t *testing.T, f *sweepFixture) {
				repo := "library/busybox"
				var children []manifestlist.ManifestDescriptor
				var layers []digest.Digest
				for _, arch := range []string{"amd64", "arm64"} {
					layer := f.putBlob(repo, schema2.MediaTypeLayer, []byte(arch+" layer"))
					config := f.putBlob(repo, schema2.MediaTypeImageConfig, []byte(`{"architecture":"`+arch+`"}`))
					m, err := schema2.FromStruct(schema2.Manifest{
						Versioned: specs.Versioned{SchemaVersion: 2},
						MediaType: schema2.MediaTypeManifest,
						Config:    config,
						Layers:    []v1.Descriptor{layer},
					})
					if err != nil {
						t.Fatal(err)
					}
					desc := f.putManifest(repo, "", m, schema2.MediaTypeManifest)
					children = append(children, manifestlist.ManifestDescriptor{Descriptor: desc, Platform: manifestlist.PlatformSpec{Architecture: arch, OS: "linux"}})
					layers = append(layers, layer.Digest, config.Digest, desc.Digest)
				}
				list, err := manifestlist.FromDescriptors(children)
				if err != nil {
					t.Fatal(err)
				}
				f.putManifest(repo, "1.36", list, manifestlist.MediaTypeManifestList)
				unref := f.blob(repo, "unreferenced")
				stats, err := f.sweep(SweepOptions{DeleteUntagged: true, Now: later})
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range layers {
					if !f.hasBlob(d) {
						t.Errorf("blob %s reached from the manifest list deleted", d)
					}
				}
				sweepCheckStats(t, stats, SweepStats{Repositories: 1, BlobsTotal: 8, BlobsMarked: 7, BlobsDeleted: 1, FreedBytes: f.size(unref.Digest)})
			},
		},
		{
			name: "referrer of a kept manifest kept",
			run: func(t *testing.T, f *sweepFixture) {
				img, _, _ := f.image("vi/ns/signed", "latest", "layer")
				sig := f.putBlob("vi/ns/signed", "application/vnd.dev.cosign.simplesigning.v1+json", []byte("signature"))
				empty := f.putBlob("vi/ns/signed", v1.MediaTypeEmptyJSON, []byte("{}"))
				payload, err := json.Marshal(map[string]any{
					"schemaVersion": 2,
					"mediaType":     v1.MediaTypeImageManifest,
					"artifactType":  "application/vnd.dev.cosign.artifact.sig.v1+json",
					"config":        empty,
					"layers":        []v1.Descriptor{sig},
					"subject":       img,
				})
				if err != nil {
					t.Fatal(err)
				}
				referrer := f.rawManifest("vi/ns/signed", "", v1.MediaTypeImageManifest, payload)
				stats, err := f.sweep(SweepOptions{DeleteUntagged: true, Now: later})
				if err != nil {
					t.Fatal(err)
				}
				if !f.hasRevision("vi/ns/signed", referrer.Digest) || !f.hasBlob(sig.Digest) {
					t.Error("referrer of the tagged manifest deleted")
				}
				sweepCheckStats(t, stats, SweepStats{Repositories: 1, BlobsTotal: 6, BlobsMarked: 6})
			},
		},
		{
			name: "manifest without mediaType",
			run: func(t *testing.T, f *sweepFixture) {
				layer := f.blob("library/alpine", "layer")
				config := f.putBlob("library/alpine", v1.MediaTypeImageConfig, []byte(`{}`))
				payload, _ := json.Marshal(map[string]any{"schemaVersion": 2, "config": config, "layers": []v1.Descriptor{layer}})
				f.rawManifest("library/alpine", "3", v1.MediaTypeImageManifest, payload)
				stats, err := f.sweep(SweepOptions{DeleteUntagged: true, Now: later})
				if err != nil {
					t.Fatal(err)
				}
				if !f.hasBlob(layer.Digest) {
					t.Error("layer deleted")
				}
				sweepCheckStats(t, stats, SweepStats{Repositories: 1, BlobsTotal: 3, BlobsMarked: 3})
			},
		},
		{
			name: "every repository is marked: legacy vi/<name> with nested ones, unmanaged",
			run: func(t *testing.T, f *sweepFixture) {
				_, _, legacy := f.image("vi/legacy", "latest", "legacy-layer")
				_, _, nested := f.image("vi/legacy/vm", "latest", "nested-layer")
				_, _, unmanaged := f.image("library/alpine", "3.20", "alpine-layer")
				unref := f.blob("library/alpine", "unreferenced")
				stats, err := f.sweep(SweepOptions{DeleteUntagged: true, Now: later})
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range []digest.Digest{legacy[0].Digest, nested[0].Digest, unmanaged[0].Digest} {
					if !f.hasBlob(d) {
						t.Errorf("layer %s deleted", d)
					}
				}
				if f.hasBlob(unref.Digest) {
					t.Error("unreferenced blob kept")
				}
				sweepCheckStats(t, stats, SweepStats{Repositories: 3, BlobsTotal: 10, BlobsMarked: 9, BlobsDeleted: 1, FreedBytes: f.size(unref.Digest)})
			},
		},
		{
			name: "dry run deletes nothing and counts the same",
			run: func(t *testing.T, f *sweepFixture) {
				f.image("vi/ns/kept", "latest", "shared", "only-kept")
				f.image("vi/ns/gone", "latest", "shared", "only-gone")
				f.image("vi/ns/kept", "latest", "shared", "kept-v2")
				f.blob("vi/ns/kept", "unreferenced")
				if err := storage.RemoveRepository(f.ctx, f.driver, "vi/ns/gone"); err != nil {
					t.Fatal(err)
				}
				before := f.files()
				var lines []string
				dry, err := f.sweep(SweepOptions{DeleteUntagged: true, DryRun: true, Now: later, Progress: func(s string) { lines = append(lines, s) }})
				if err != nil {
					t.Fatal(err)
				}
				sweepCheckFiles(t, before, f.files())
				if dry.ManifestsDeleted != 1 || dry.BlobsDeleted != 7 {
					t.Errorf("dry run stats %+v, want 1 manifest and 7 blobs", dry)
				}
				if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "sweep: ") {
					t.Errorf("progress lines %q", lines)
				}
				real, err := f.sweep(SweepOptions{DeleteUntagged: true, Now: later})
				if err != nil {
					t.Fatal(err)
				}
				sweepCheckStats(t, real, dry)
				again, err := f.sweep(SweepOptions{DeleteUntagged: true, Now: later})
				if err != nil {
					t.Fatal(err)
				}
				sweepCheckStats(t, again, SweepStats{Repositories: 1, BlobsTotal: real.BlobsTotal - real.BlobsDeleted, BlobsMarked: real.BlobsMarked})
			},
		},
		{
			name: "kept manifest whose blob is missing aborts",
			run: func(t *testing.T, f *sweepFixture) {
				f.image("vi/ns/ok", "latest", "ok-layer")
				broken, _, _ := f.image("vi/ns/broken", "latest", "broken-layer")
				f.blob("vi/ns/ok", "unreferenced")
				if err := os.Remove(filepath.Join(f.dir, blobData(broken.Digest))); err != nil {
					t.Fatal(err)
				}
				sweepCheckAbort(t, f, "vi/ns/broken", broken.Digest)
			},
		},
		{
			name: "kept manifest that is corrupt aborts",
			run: func(t *testing.T, f *sweepFixture) {
				f.image("vi/ns/ok", "latest", "ok-layer")
				broken, _, _ := f.image("vi/ns/broken", "latest", "broken-layer")
				f.blob("vi/ns/ok", "unreferenced")
				if err := os.WriteFile(filepath.Join(f.dir, blobData(broken.Digest)), []byte("{not json"), 0o644); err != nil {
					t.Fatal(err)
				}
				sweepCheckAbort(t, f, "vi/ns/broken", broken.Digest)
			},
		},
		{
			name: "missing child of a tagged index that is in the repository aborts",
			run: func(t *testing.T, f *sweepFixture) {
				child, _, _ := f.image("vi/ns/multi", "", "layer")
				f.index("vi/ns/multi", "latest", child)
				f.blob("vi/ns/multi", "unreferenced")
				if err := os.Remove(filepath.Join(f.dir, blobData(child.Digest))); err != nil {
					t.Fatal(err)
				}
				sweepCheckAbort(t, f, "vi/ns/multi", child.Digest)
			},
		},
		{
			name: "revision with an invalid digest",
			run: func(t *testing.T, f *sweepFixture) {
				f.image("vi/ns/a", "latest", "layer")
				f.blob("vi/ns/a", "unreferenced")
				bad := path.Join(storage.RepositoryDir("vi/ns/a"), "_manifests/revisions/sha256/not-a-digest/link")
				if err := f.driver.PutContent(f.ctx, bad, []byte("sha256:not-a-digest")); err != nil {
					t.Fatal(err)
				}
				f.age(time.Hour)
				before := f.files()
				// Kept (DeleteUntagged false or within the grace period): what it references is unknown.
				for _, opts := range []SweepOptions{{}, {DeleteUntagged: true, GracePeriod: 2 * time.Hour}} {
					if _, err := f.sweep(opts); err == nil || !strings.Contains(err.Error(), "not-a-digest") {
						t.Errorf("%+v: error %v, want one naming the revision", opts, err)
					}
					sweepCheckFiles(t, before, f.files())
				}
				// Untagged and old: ignored, left alone.
				stats, err := f.sweep(SweepOptions{DeleteUntagged: true, GracePeriod: time.Minute})
				if err != nil {
					t.Fatal(err)
				}
				if !f.exists(bad) {
					t.Error("invalid revision deleted")
				}
				sweepCheckStats(t, stats, SweepStats{Repositories: 1, BlobsTotal: 4, BlobsMarked: 3, BlobsDeleted: 1, FreedBytes: int64(len("unreferenced"))})
			},
		},
		{
			name: "empty storage",
			run: func(t *testing.T, f *sweepFixture) {
				stats, err := f.sweep(SweepOptions{DeleteUntagged: true})
				if err != nil {
					t.Fatal(err)
				}
				sweepCheckStats(t, stats, SweepStats{})
				if err := os.MkdirAll(filepath.Join(f.dir, "docker/registry/v2/blobs/sha256"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.MkdirAll(filepath.Join(f.dir, "docker/registry/v2/repositories"), 0o755); err != nil {
					t.Fatal(err)
				}
				stats, err = f.sweep(SweepOptions{DeleteUntagged: true})
				if err != nil {
					t.Fatal(err)
				}
				sweepCheckStats(t, stats, SweepStats{})
			},
		},
		{
			name: "blob directory without data left alone",
			run: func(t *testing.T, f *sweepFixture) {
				d := digest.FromString("half written")
				dir := filepath.Join(f.dir, blobDir(d))
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				stats, err := f.sweep(SweepOptions{DeleteUntagged: true, Now: later})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := os.Stat(dir); err != nil {
					t.Error(err)
				}
				sweepCheckStats(t, stats, SweepStats{BlobsTotal: 1})
			},
		},
		{
			name: "canceled context",
			run: func(t *testing.T, f *sweepFixture) {
				f.image("vi/ns/a", "latest", "layer")
				f.blob("vi/ns/a", "unreferenced")
				before := f.files()
				ctx, cancel := context.WithCancel(f.ctx)
				cancel()
				_, err := MarkAndSweep(ctx, f.driver, SweepOptions{DeleteUntagged: true, Now: later})
				if !errors.Is(err, context.Canceled) {
					t.Errorf("error %v, want context.Canceled", err)
				}
				sweepCheckFiles(t, before, f.files())
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, newSweepFixture(t))
		})
	}
}

func TestMarkAndSweepProgress(t *testing.T) {
	f := newSweepFixture(t)
	for i := range 25 {
		f.image(fmt.Sprintf("vi/ns/img%02d", i), "latest", fmt.Sprintf("layer %d", i))
	}
	var mu sync.Mutex
	var lines []string
	_, err := f.sweep(SweepOptions{DeleteUntagged: true, Concurrency: 4, Progress: func(s string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, s)
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"mark: 25/25 repositories", "sweep: 75/75 blobs"}
	for _, w := range want {
		found := false
		for _, l := range lines {
			found = found || l == w
		}
		if !found {
			t.Errorf("no progress line %q in %q", w, lines)
		}
	}
	if len(lines) > 2*11+2 {
		t.Errorf("%d progress lines, want at most one per 10%%: %q", len(lines), lines)
	}
}

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

// BenchmarkMarkAndSweep: 2,000 repositories and 20,000 blobs on the
// filesystem driver, written directly with PutContent. Each repository has
// a tagged image (config, 3 own layers, 1 of 100 shared layers); every other
// one an untagged older image (config, 2 layers); the rest are unreferenced
// blobs.
func BenchmarkMarkAndSweep(b *testing.B) {
	const repos = 2000
	later := func() time.Time { return time.Now().Add(time.Minute) }
	report := func(b *testing.B, stats SweepStats) {
		b.ReportMetric(float64(stats.Repositories), "repos")
		b.ReportMetric(float64(stats.BlobsTotal), "blobs")
		b.ReportMetric(float64(stats.BlobsDeleted), "deleted")
		b.ReportMetric(float64(stats.ManifestsDeleted), "manifests-deleted")
	}
	b.Run("dry-run", func(b *testing.B) {
		driver := sweepBenchStorage(b, b.TempDir(), repos)
		var stats SweepStats
		for b.Loop() {
			var err error
			stats, err = MarkAndSweep(context.Background(), driver, SweepOptions{DeleteUntagged: true, DryRun: true, Now: later})
			if err != nil {
				b.Fatal(err)
			}
		}
		report(b, stats)
	})
	b.Run("delete", func(b *testing.B) {
		var stats SweepStats
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			driver := sweepBenchStorage(b, b.TempDir(), repos)
			b.StartTimer()
			var err error
			stats, err = MarkAndSweep(context.Background(), driver, SweepOptions{DeleteUntagged: true, Now: later})
			if err != nil {
				b.Fatal(err)
			}
		}
		report(b, stats)
	})
}

func sweepBenchStorage(b *testing.B, dir string, repos int) storagedriver.StorageDriver {
	b.Helper()
	ctx := context.Background()
	driver, err := filesystem.FromParameters(map[string]any{"rootdirectory": dir})
	if err != nil {
		b.Fatal(err)
	}
	put := func(p string, content []byte) {
		if err := driver.PutContent(ctx, p, content); err != nil {
			b.Error(err)
		}
	}
	blob := func(content string) v1.Descriptor {
		d := digest.FromString(content)
		put(blobData(d), []byte(content))
		return v1.Descriptor{MediaType: v1.MediaTypeImageLayerGzip, Digest: d, Size: int64(len(content))}
	}
	image := func(repo string, layers ...v1.Descriptor) digest.Digest {
		config := blob(fmt.Sprintf(`{"repo":%q,"layers":%d}`, repo, len(layers)))
		config.MediaType = v1.MediaTypeImageConfig
		m, err := ocischema.FromStruct(ocischema.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: v1.MediaTypeImageManifest,
			Config:    config,
			Layers:    layers,
		})
		if err != nil {
			b.Fatal(err)
		}
		_, payload, _ := m.Payload()
		d := digest.FromBytes(payload)
		put(blobData(d), payload)
		put(revisionLink(repo, d), []byte(d))
		for _, l := range append(layers, config) {
			put(path.Join(storage.RepositoryDir(repo), "_layers", "sha256", l.Digest.Encoded(), "link"), []byte(l.Digest))
		}
		return d
	}
	tag := func(repo string, d digest.Digest) {
		tags := path.Join(storage.RepositoryDir(repo), "_manifests", "tags", "latest")
		put(path.Join(tags, "current", "link"), []byte(d))
		put(path.Join(tags, "index", "sha256", d.Encoded(), "link"), []byte(d))
	}
	shared := make([]v1.Descriptor, 100)
	for i := range shared {
		shared[i] = blob(fmt.Sprintf("shared layer %d", i))
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	blobs := len(shared)
	for i := range repos {
		if i%2 == 0 {
			blobs += 4
		}
		blobs += 5
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			repo := fmt.Sprintf("vi/ns%02d/image-%04d", i%50, i)
			if i%2 == 0 {
				old := image(repo, blob(repo+" old 1"), blob(repo+" old 2"))
				tag(repo, old)
			}
			tag(repo, image(repo, blob(repo+" 1"), blob(repo+" 2"), blob(repo+" 3"), shared[i%len(shared)]))
		})
	}
	for i := blobs; i < 20000; i++ {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			blob(fmt.Sprintf("unreferenced %d", i))
		})
	}
	wg.Wait()
	return driver
}
