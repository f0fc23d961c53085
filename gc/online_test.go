package gc_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/dvcr/dvcr/gc"
	"github.com/dvcr/dvcr/naming"
	"github.com/dvcr/dvcr/registry"
	"github.com/dvcr/dvcr/test/dvcrtest"
)

// TestOnlineDuringWindowAndFreeing: a real registry over loopback HTTP and
// the collector of its process. Inside the window pulls succeed; while the
// condemned blobs are deleted the registry is writable, pulls succeed, a
// condemned blob answers 404 in every repository, and pushing condemned
// content again ends with it present and whole.
func TestOnlineDuringWindowAndFreeing(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	srv, hs := startRegistry(t, root)
	live := push(t, hs, "vi/ns/live", randomImage(t, 2))
	var condemned []v1.Image
	for i := range 8 {
		condemned = append(condemned, push(t, hs, fmt.Sprintf("vi/ns/gone-%d", i), randomImage(t, 3)))
	}
	c, err := gc.NewCollector(ctx, srv.Config(), liveOf(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.NewLister = func() (gc.Lister, error) { return liveOnly{}, nil }
	c.Now = func() time.Time { return time.Now().Add(time.Minute) }
	var (
		pulledInWindow    bool
		pushedWhileFreein bool
	)
	res, err := c.Run(ctx, "manual", func(line string) {
		switch {
		case strings.HasPrefix(line, "listing resources in the cluster") && srv.Gate().ReadOnly():
			pull(t, hs, "vi/ns/live", live)
			pulledInWindow = true
		case line == "registry is read-write again":
			if srv.Gate().ReadOnly() {
				t.Error("read-only while freeing space")
			}
			if !srv.Condemned().Active() {
				t.Error("no condemned set while freeing space")
			}
			pull(t, hs, "vi/ns/live", live)
			layer := layerDigest(t, condemned[1])
			for _, repo := range []string{"vi/ns/live", "vi/ns/gone-1"} {
				if code := headBlob(t, hs, repo, layer); code != 404 {
					t.Errorf("HEAD of condemned blob %s in %s: %d, want 404", layer, repo, code)
				}
			}
			push(t, hs, "vi/ns/again", condemned[0])
			pushedWhileFreein = true
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if !pulledInWindow || !pushedWhileFreein {
		t.Fatalf("pulled in window %v, pushed while freeing %v", pulledInWindow, pushedWhileFreein)
	}
	if len(res.Deleted) != len(condemned) || res.Freed <= 0 || res.Sweep == nil || res.Sweep.BlobsWrittenAgain == 0 {
		t.Fatalf("deleted %d, freed %d, sweep %+v; want %d repositories, some space, blobs written again", len(res.Deleted), res.Freed, res.Sweep, len(condemned))
	}
	if srv.Condemned().Active() {
		t.Error("the condemned set is still published after the run")
	}
	if trashEntries(t, root) != 0 {
		t.Error("the trash is not empty after the run")
	}
	pull(t, hs, "vi/ns/again", condemned[0])
	pull(t, hs, "vi/ns/live", live)
	gone := layerDigest(t, condemned[1])
	if _, err := os.Stat(filepath.Join(root, "docker/registry/v2/blobs", gone.Algorithm, gone.Hex[:2], gone.Hex)); !os.IsNotExist(err) {
		t.Errorf("condemned blob %s still in storage after the run: %v", gone, err)
	}
}

// TestWritesAfterMarkAhead: an image pushed between the mark ahead of the
// window and the window, made of the blobs of a repository the run
// removes, is marked again inside the window and pulls whole afterwards;
// also when a write the registry cannot attribute to a repository makes
// the window mark everything again.
func TestWritesAfterMarkAhead(t *testing.T) {
	for _, unnamed := range []bool{false, true} {
		t.Run(fmt.Sprintf("unattributed write %v", unnamed), func(t *testing.T) {
			ctx := context.Background()
			srv, hs := startRegistry(t, t.TempDir())
			live := push(t, hs, "vi/ns/live", randomImage(t, 2))
			orphan := push(t, hs, "vi/ns/gone", randomImage(t, 3))
			c, err := gc.NewCollector(ctx, srv.Config(), liveOf(srv), nil)
			if err != nil {
				t.Fatal(err)
			}
			c.NewLister = func() (gc.Lister, error) { return liveOnly{}, nil }
			c.Now = func() time.Time { return time.Now().Add(time.Minute) }
			var lines []string
			res, err := c.Run(ctx, "manual", func(line string) {
				lines = append(lines, line)
				if strings.HasPrefix(line, "switching the registry to read-only") {
					push(t, hs, "vi/ns/again", orphan)
					if unnamed {
						resp, err := http.Post(hs.URL+"/v2/", "text/plain", nil)
						if err != nil {
							t.Fatal(err)
						}
						_ = resp.Body.Close()
					}
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			all := strings.Join(lines, "\n")
			if !strings.Contains(all, "marking ahead") || strings.Contains(all, "marking every repository again") != unnamed {
				t.Fatalf("progress does not show the expected marks:\n%s", all)
			}
			if len(res.Deleted) != 1 {
				t.Fatalf("deleted %v, want vi/ns/gone", res.Deleted)
			}
			if res.Sweep == nil || res.Sweep.Repositories != 2 {
				t.Errorf("sweep %+v: want 2 repositories marked (live, again), each counted once", res.Sweep)
			}
			pull(t, hs, "vi/ns/again", orphan)
			pull(t, hs, "vi/ns/live", live)
		})
	}
}

func layerDigest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	d, err := layers[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func headBlob(t *testing.T, hs *httptest.Server, repo string, d v1.Hash) int {
	t.Helper()
	resp, err := http.Head(hs.URL + "/v2/" + repo + "/blobs/" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

type liveOnly struct{}

func (liveOnly) List(context.Context) (*gc.ClusterInventory, error) {
	return &gc.ClusterInventory{Resources: []gc.Resource{
		{Kind: naming.KindVI, Namespace: "ns", Name: "live"},
		{Kind: naming.KindVI, Namespace: "ns", Name: "again"},
	}}, nil
}

// TestInmemoryPushGCPull: with the inmemory driver the collector works on
// the registry's own store: a live image pulls after a run, an orphan is
// gone, and pushing it again works.
func TestInmemoryPushGCPull(t *testing.T) {
	ctx := context.Background()
	srv, hs := startRegistry(t, "")
	live := push(t, hs, "vi/ns/live", randomImage(t, 2))
	orphan := push(t, hs, "vi/ns/gone", randomImage(t, 2))
	c, err := gc.NewCollector(ctx, srv.Config(), liveOf(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.NewLister = func() (gc.Lister, error) { return liveOnly{}, nil }
	c.Now = func() time.Time { return time.Now().Add(time.Minute) }
	res, err := c.Run(ctx, "manual", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Deleted) != 1 || res.Freed <= 0 {
		t.Fatalf("deleted %v, freed %d (%+v, warnings %v); want vi/ns/gone and its space", res.Deleted, res.Freed, res.Sweep, res.Warnings)
	}
	pull(t, hs, "vi/ns/live", live)
	if _, err := remote.Image(reference(t, hs, "vi/ns/gone")); err == nil {
		t.Error("the orphan still pulls")
	}
	pull(t, hs, "vi/ns/again", push(t, hs, "vi/ns/again", orphan))
}

// startRegistry serves a registry on filesystem storage in root, or on the
// inmemory driver when root is empty.
func startRegistry(t *testing.T, root string) (*registry.Server, *httptest.Server) {
	t.Helper()
	storage := "inmemory: {}"
	if root != "" {
		storage = fmt.Sprintf("filesystem: {rootdirectory: %s}", root)
	}
	srv := dvcrtest.NewRegistry(t, storage, "dvcr:\n  gc: {gracePeriod: 0s}\n")
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return srv, hs
}

// liveOf is the registry as a run uses it, as dvcr serve builds it.
func liveOf(srv *registry.Server) *gc.Live {
	return &gc.Live{Gate: srv.Gate(), Condemned: srv.Condemned(), ResetCaches: srv.ResetCaches, Driver: srv.Driver()}
}

func randomImage(t *testing.T, layers int64) v1.Image {
	t.Helper()
	img, err := random.Image(64<<10, layers)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func reference(t *testing.T, hs *httptest.Server, repo string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(strings.TrimPrefix(hs.URL, "http://")+"/"+repo+":latest", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func push(t *testing.T, hs *httptest.Server, repo string, img v1.Image) v1.Image {
	t.Helper()
	if err := remote.Write(reference(t, hs, repo), img); err != nil {
		t.Fatalf("pushing %s: %v", repo, err)
	}
	return img
}

// pull reads the image whole, each layer checked against its digest, and
// compares it with want.
func pull(t *testing.T, hs *httptest.Server, repo string, want v1.Image) {
	t.Helper()
	img, err := remote.Image(reference(t, hs, repo))
	if err != nil {
		t.Fatalf("pulling %s: %v", repo, err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatalf("pulling %s: %v", repo, err)
	}
	for _, l := range layers {
		rc, err := l.Compressed() // verifies the digest at EOF
		if err == nil {
			_, err = io.Copy(io.Discard, rc)
			_ = rc.Close()
		}
		if err != nil {
			t.Fatalf("pulling %s: %v", repo, err)
		}
	}
	got, _ := img.Digest()
	wantD, _ := want.Digest()
	if got != wantD {
		t.Fatalf("pulled %s at %s, want %s", repo, got, wantD)
	}
}

func trashEntries(t *testing.T, root string) int {
	t.Helper()
	runs, _ := os.ReadDir(filepath.Join(root, "dvcr", "gc", "trash"))
	n := 0
	for _, r := range runs {
		shards, err := os.ReadDir(filepath.Join(root, "dvcr", "gc", "trash", r.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range shards {
			entries, err := os.ReadDir(filepath.Join(root, "dvcr", "gc", "trash", r.Name(), s.Name()))
			if err != nil {
				t.Fatal(err)
			}
			n += len(entries)
		}
	}
	return n
}
