package gc_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/dvcr/dvcr/gc"
)

// TestOnlineKeepsWhatAKeptRepositoryLinks: an orphan tagged again within
// the grace period, over blobs older than it, is kept by the window, and
// so are its blobs: it pulls whole after the run.
func TestOnlineKeepsWhatAKeptRepositoryLinks(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	srv, hs := startRegistry(t, root)
	push(t, hs, "vi/ns/live", randomImage(t, 1))
	kept := push(t, hs, "vi/ns/gone", randomImage(t, 2))
	old := time.Now().Add(-3 * time.Hour)
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, old, old)
	})
	if err != nil {
		t.Fatal(err)
	}
	tag := reference(t, hs, "vi/ns/gone").Context().Tag("again")
	if err := remote.Write(tag, kept); err != nil {
		t.Fatal(err)
	}
	c, err := gc.NewCollector(ctx, srv.Config(), liveOf(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.NewLister = func() (gc.Lister, error) { return liveOnly{}, nil }
	c.Settings.GC.GracePeriod = time.Hour
	var lines []string
	res, err := c.Run(ctx, "manual", func(line string) { lines = append(lines, line) })
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Deleted) != 0 || len(res.Skipped) != 1 {
		t.Fatalf("deleted %v, skipped %v; want vi/ns/gone kept\n%s", res.Deleted, res.Skipped, strings.Join(lines, "\n"))
	}
	pull(t, hs, "vi/ns/gone", kept)
}
