package gc

import (
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// uploadingCases: an unreferenced blob linked into a repository that stays
// is kept while it looks like an import in progress (linked no earlier than
// the repository's tags moved, within UploadingAge), whatever the grace
// period, and goes otherwise.
var uploadingCases = []sweepCase{
	{
		name: "blob committed after the tag moved, manifest not yet: kept",
		run: func(t *testing.T, f *sweepFixture) {
			f.image("cvi/image", "latest", "old-layer")
			f.age(time.Hour)
			upload := f.blob("cvi/image", "new import's layer")
			checkUploading(t, f, upload.Digest, true)
		},
	},
	{
		name: "first import, no manifest yet: kept",
		run: func(t *testing.T, f *sweepFixture) {
			upload := f.blob("cvi/new", "first import's layer")
			// Storage lists no repository without a manifest: the
			// collector names it (firstImports).
			checkUploading(t, f, upload.Digest, true, "cvi/new")
		},
	},
	{
		name: "layer of the image a re-import replaced: deleted",
		run: func(t *testing.T, f *sweepFixture) {
			_, _, old := f.image("cvi/image", "latest", "old-layer")
			f.age(time.Minute) // the tag then moves strictly later
			f.image("cvi/image", "latest", "new-layer")
			checkUploading(t, f, old[0].Digest, false)
		},
	},
	{
		name: "upload abandoned longer than UploadingAge: deleted",
		run: func(t *testing.T, f *sweepFixture) {
			upload := f.blob("cvi/new", "abandoned layer")
			f.age(UploadingAge + time.Hour)
			checkUploading(t, f, upload.Digest, false, "cvi/new")
		},
	},
	{
		name: "leftover linked before the tag moved: deleted",
		run: func(t *testing.T, f *sweepFixture) {
			leftover := f.blob("cvi/image", "failed import's layer")
			f.age(time.Minute)
			f.image("cvi/image", "latest", "layer")
			checkUploading(t, f, leftover.Digest, false)
		},
	},
}

func TestUploading(t *testing.T) {
	for _, tt := range uploadingCases {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, newSweepFixture(t))
		})
	}
}

// checkUploading sweeps with no grace period (a clock a minute ahead),
// marking repos when given, and checks whether blob d was kept as part of
// an import in progress.
func checkUploading(t *testing.T, f *sweepFixture, d digest.Digest, kept bool, repos ...string) {
	t.Helper()
	opts := SweepOptions{DeleteUntagged: true, Now: func() time.Time { return time.Now().Add(time.Minute) }, Repositories: repos}
	stats, err := f.sweep(opts)
	if err != nil {
		t.Fatal(err)
	}
	if f.hasBlob(d) != kept {
		t.Errorf("blob %s present %v, want %v (stats %+v)", d, f.hasBlob(d), kept, stats)
	}
	if want := map[bool]int{true: 1}[kept]; stats.BlobsKeptUploading != want {
		t.Errorf("BlobsKeptUploading %d, want %d", stats.BlobsKeptUploading, want)
	}
}
