package gc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dvcr/dvcr/storage"
)

func TestMarkAndSweep(t *testing.T) {
	for _, cases := range [][]sweepCase{markCases, untaggedCases, blobSweepCases, runCases} {
		for _, tt := range cases {
			t.Run(tt.name, func(t *testing.T) {
				tt.run(t, newSweepFixture(t))
			})
		}
	}
}

// runCases: a run as a whole: dry run, empty storage, the aborts that keep
// a partial mark from deleting live blobs, cancelation.
var runCases = []sweepCase{
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
			if err := os.Remove(filepath.Join(f.dir, storage.BlobData(broken.Digest))); err != nil {
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
			if err := os.WriteFile(filepath.Join(f.dir, storage.BlobData(broken.Digest)), []byte("{not json"), 0o644); err != nil {
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
			if err := os.Remove(filepath.Join(f.dir, storage.BlobData(child.Digest))); err != nil {
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
			stats, err := f.sweep(SweepOptions{DeleteUntagged: true, GracePeriod: time.Minute, Now: later})
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
