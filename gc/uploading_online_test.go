package gc_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/dvcr/dvcr/gc"
)

// TestImportAcrossRun: an import that committed its blobs before or during
// a run (gracePeriod 0s) and writes its manifest after it succeeds and pulls
// whole, into a repository that already holds an image (a re-import) and
// into one that has none yet (a first import); with the deletion deferred
// after the window (dvcr serve) and inside it (a collector with no live
// registry, as offline or with replicas).
func TestImportAcrossRun(t *testing.T) {
	for _, tc := range []struct {
		name     string
		commitAt string // progress line at which the blobs are committed; "" before the run
		inWindow bool   // the collector deletes inside the window
	}{
		{"committed before the run", "", false},
		{"committed as the blobs are listed", "listing blobs in storage", false},
		{"committed during the mark ahead", "marking ahead of the read-only window", false},
		{"committed before the run, deleting in the window", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			srv, hs := startRegistry(t, t.TempDir())
			push(t, hs, "vi/ns/live", randomImage(t, 1))
			imports := map[string]v1.Image{"vi/ns/live": randomImage(t, 2), "vi/ns/again": randomImage(t, 2)}
			commit := func() {
				for repo, img := range imports {
					writeBlobs(t, hs, repo, img)
				}
			}
			if tc.commitAt == "" {
				commit()
			}
			live := liveOf(srv)
			if tc.inWindow {
				live = nil
			}
			c, err := gc.NewCollector(ctx, srv.Config(), live, nil)
			if err != nil {
				t.Fatal(err)
			}
			c.NewLister = func() (gc.Lister, error) { return liveOnly{}, nil }
			c.Now = func() time.Time { return time.Now().Add(time.Minute) }
			res, err := c.Run(ctx, "manual", func(line string) {
				if tc.commitAt != "" && strings.HasPrefix(line, tc.commitAt) {
					commit()
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			for repo, img := range imports {
				if err := remote.Put(reference(t, hs, repo), img); err != nil {
					t.Fatalf("manifest of %s after the run: %v (sweep %+v)", repo, err, res.Sweep)
				}
				pull(t, hs, repo, img)
			}
		})
	}
}

// writeBlobs commits an image's layers and config into repo, as an import
// does before its manifest.
func writeBlobs(t *testing.T, hs *httptest.Server, repo string, img v1.Image) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	layers = append(layers, static.NewLayer(cfg, types.DockerConfigJSON))
	for _, l := range layers {
		if err := remote.WriteLayer(reference(t, hs, repo).Context(), l); err != nil {
			t.Fatalf("uploading a blob into %s: %v", repo, err)
		}
	}
}
