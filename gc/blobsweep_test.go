package gc

import (
	"os"
	"path"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/dvcr/dvcr/storage"
)

// blobSweepCases: the blob sweep and what protects a blob from it.
var blobSweepCases = []sweepCase{
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

			// Past the grace period and the age of an import in progress
			// (fresh is linked after the tag: it looks like one).
			opts.Now = func() time.Time { return time.Now().Add(UploadingAge + time.Hour) }
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
		name: "blob directory without data left alone",
		run: func(t *testing.T, f *sweepFixture) {
			d := digest.FromString("half written")
			dir := filepath.Join(f.dir, storage.BlobDir(d))
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
}
