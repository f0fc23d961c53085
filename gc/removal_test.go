package gc

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/dvcr/dvcr/storage"
)

// removalFixture: a live repository and three orphans with blobs shared in
// every way that matters to the hold-and-release of a Removal.
type removalFixture struct {
	*sweepFixture
	live, onlyRemoved, sharedRemoved, sharedStaying, orphanStaying digest.Digest
	unlinked                                                       digest.Digest // linked by no repository at all
}

func newRemovalFixture(t *testing.T) *removalFixture {
	f := &removalFixture{sweepFixture: newSweepFixture(t)}
	_, _, l := f.image("vi/ns/live", "latest", "live-and-gone", "only-live")
	f.live = l[0].Digest
	_, _, l = f.image("vi/ns/gone-a", "latest", "live-and-gone", "only-a", "a-and-b", "a-and-c")
	f.onlyRemoved, f.sharedRemoved, f.sharedStaying = l[1].Digest, l[2].Digest, l[3].Digest
	f.image("vi/ns/gone-b", "latest", "a-and-b")
	_, _, l = f.image("vi/ns/gone-c", "latest", "a-and-c", "only-c")
	f.orphanStaying = l[1].Digest
	f.unlinked = f.blob("vi/ns/scratch", "unlinked").Digest
	if err := f.driver.Delete(f.ctx, storage.RepositoryDir("vi/ns/scratch")); err != nil {
		t.Fatal(err)
	}
	return f
}

var errStorageDown = errors.New("storage down")

var removalPaths = []string{"vi/ns/gone-a", "vi/ns/gone-b", "vi/ns/gone-c"}

// removeAllBut is a Remove that deletes every path except keep, and checks
// that no blob a repository links is gone before the repository is.
func (f *removalFixture) removeAllBut(t *testing.T, keep string, fail error) func(context.Context, int) (bool, error) {
	return func(ctx context.Context, i int) (bool, error) {
		p := removalPaths[i]
		links, err := repositoryLinks(ctx, f.driver, p)
		if err != nil {
			t.Error(err)
		}
		for _, d := range links {
			if !f.hasBlob(d) {
				t.Errorf("blob %s of %s swept before the repository was removed", d, p)
			}
		}
		if p == keep {
			return false, fail
		}
		return true, storage.RemoveRepository(ctx, f.driver, p)
	}
}

func TestRemoval(t *testing.T) {
	later := func() time.Time { return time.Now().Add(time.Minute) }
	tests := []struct {
		name       string
		keep       string // the repository Remove does not remove
		fail       error  // what Remove returns for it
		wantErr    error
		wantKept   []string
		wantLinked int
	}{
		{name: "all removed", wantKept: []string{"live"}},
		{
			name: "a repository kept on purpose keeps the blobs it links", keep: "vi/ns/gone-c",
			wantKept: []string{"live", "sharedStaying", "orphanStaying"}, wantLinked: 4, // its manifest, config and two layers
		},
		{
			name: "a failed removal fails the run and keeps the blobs it links", keep: "vi/ns/gone-c",
			fail: errStorageDown, wantErr: errStorageDown,
			wantKept: []string{"live", "sharedStaying", "orphanStaying"}, wantLinked: 4, // its manifest, config and two layers
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newRemovalFixture(t)
			blobs := map[string]digest.Digest{
				"live": f.live, "onlyRemoved": f.onlyRemoved, "sharedRemoved": f.sharedRemoved,
				"sharedStaying": f.sharedStaying, "orphanStaying": f.orphanStaying, "unlinked": f.unlinked,
			}
			stats, err := f.sweep(SweepOptions{
				DeleteUntagged: true, Now: later, Repositories: []string{"vi/ns/live"},
				Removal: &Removal{Paths: removalPaths, Remove: f.removeAllBut(t, tt.keep, tt.fail), Concurrency: 1},
			})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("MarkAndSweep: %v, want %v", err, tt.wantErr)
			}
			kept := map[string]bool{}
			for _, name := range tt.wantKept {
				kept[name] = true
			}
			for name, d := range blobs {
				if f.hasBlob(d) != kept[name] {
					t.Errorf("blob %s: present %v, want %v", name, f.hasBlob(d), kept[name])
				}
			}
			if stats.BlobsKeptLinked != tt.wantLinked {
				t.Errorf("BlobsKeptLinked = %d, want %d", stats.BlobsKeptLinked, tt.wantLinked)
			}
			if stats.Repositories != 1 {
				t.Errorf("marked %d repositories, want only the live one", stats.Repositories)
			}
		})
	}
}

// TestRemovalOverlapsSweep: blobs no repository of the Removal links are
// swept while the removal is still running.
func TestRemovalOverlapsSweep(t *testing.T) {
	f := newRemovalFixture(t)
	later := func() time.Time { return time.Now().Add(time.Minute) }
	removeAll := f.removeAllBut(t, "", nil)
	_, err := f.sweep(SweepOptions{
		DeleteUntagged: true, Now: later, Repositories: []string{"vi/ns/live"},
		Removal: &Removal{Paths: removalPaths, Concurrency: 1, Remove: func(ctx context.Context, i int) (bool, error) {
			if i == 0 {
				deadline := time.Now().Add(10 * time.Second)
				for f.hasBlob(f.unlinked) && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
				if f.hasBlob(f.unlinked) {
					t.Error("the sweep did not start while the removal was running")
				}
			}
			return removeAll(ctx, i)
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if f.hasBlob(f.onlyRemoved) {
		t.Error("blob of a removed repository survived")
	}
}

func TestRemovalRefusesDryRun(t *testing.T) {
	f := newRemovalFixture(t)
	before := f.files()
	_, err := f.sweep(SweepOptions{DryRun: true, Removal: &Removal{Paths: removalPaths, Remove: f.removeAllBut(t, "", nil)}})
	if !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("err = %v, want ErrInvalidOptions", err)
	}
	if after := f.files(); len(after) != len(before) {
		t.Errorf("%d files before, %d after", len(before), len(after))
	}
}
