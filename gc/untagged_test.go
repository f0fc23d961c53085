package gc

import (
	"path"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/dvcr/dvcr/storage"
)

// untaggedCases: the deletion of the manifests no tag reaches.
var untaggedCases = []sweepCase{
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
}
