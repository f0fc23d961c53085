//go:build bench

// The GC benchmark's dataset: 2,000 repositories written straight into the
// storage layout, and the copies each run works on.

package bench

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/dvcr/dvcr/test/envtest"
)

func gcNamespace(i int) string { return fmt.Sprintf("gcbench-%02d", i) }

// gcPlan names the repositories: live ones have a resource, orphans not.
func gcPlan(size gcSize) []*gcRepo {
	var repos []*gcRepo
	for _, live := range []bool{true, false} {
		prefix := "img"
		if !live {
			prefix = "gone"
		}
		n := size.live
		if !live {
			n = size.orphans
		}
		for i := 0; i < n; i++ {
			ns := gcNamespace(i % size.namespaces)
			name := fmt.Sprintf("%s-%04d", prefix, i)
			r := &gcRepo{live: live}
			switch {
			case i < size.cvi:
				r.path = "cvi/" + name
				r.obj = object{gvr: envtest.CVIResource, kind: "ClusterVirtualImage", name: name}
			case i < size.cvi+size.vi:
				r.path = "vi/" + ns + "/" + name
				r.obj = object{gvr: envtest.VIResource, kind: "VirtualImage", ns: ns, name: name}
			default:
				r.path = "vd/" + ns + "/" + name
				r.obj = object{gvr: envtest.VDResource, kind: "VirtualDisk", ns: ns, name: name}
			}
			repos = append(repos, r)
		}
	}
	return repos
}

// gcLayout writes the distribution storage layout directly.
type gcLayout struct {
	v2 string // <root>/docker/registry/v2

	mu        sync.Mutex
	blobs     int
	bytes     int64
	keep      map[digest.Digest]struct{}
	keepBytes int64
	untagged  int
}

// content is a deterministic pseudo-random payload of 1–4 KiB for id.
func gcContent(id string) []byte {
	seed := sha256.Sum256([]byte(id))
	size := 1024 + int(binary.LittleEndian.Uint16(seed[:2])%3072)
	buf := make([]byte, size)
	_, _ = rand.NewChaCha8(seed).Read(buf)
	return buf
}

// putBlob writes a blob's data file (each blob is written by exactly one
// goroutine) and returns its descriptor.
func (l *gcLayout) putBlob(mediaType string, content []byte) (v1.Descriptor, error) {
	d := digest.FromBytes(content)
	dir := filepath.Join(l.v2, "blobs", "sha256", d.Encoded()[:2], d.Encoded())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return v1.Descriptor{}, err
	}
	if err := os.WriteFile(filepath.Join(dir, "data"), content, 0o644); err != nil {
		return v1.Descriptor{}, err
	}
	l.mu.Lock()
	l.blobs++
	l.bytes += int64(len(content))
	l.mu.Unlock()
	return v1.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(content))}, nil
}

func (l *gcLayout) layer(id string) (v1.Descriptor, error) {
	return l.putBlob(v1.MediaTypeImageLayer, gcContent(id))
}

func (l *gcLayout) link(repo, rel string, d digest.Digest) error {
	dir := filepath.Join(l.v2, "repositories", filepath.FromSlash(repo), filepath.FromSlash(rel), "sha256", d.Encoded())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "link"), []byte(d.String()), 0o644)
}

// image writes the config blob and the manifest of an image of repo whose
// layers are already written, with the repository's links; it returns the
// manifest's digest and every blob it references, manifest included.
func (l *gcLayout) image(repo, id string, layers []v1.Descriptor) (digest.Digest, []v1.Descriptor, error) {
	cfg, err := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"rootfs":  map[string]any{"type": "layers", "diff_ids": []string{}},
		"comment": id,
	})
	if err != nil {
		return "", nil, err
	}
	config, err := l.putBlob(v1.MediaTypeImageConfig, cfg)
	if err != nil {
		return "", nil, err
	}
	payload, err := json.Marshal(v1.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageManifest,
		Config:    config,
		Layers:    layers,
	})
	if err != nil {
		return "", nil, err
	}
	m, err := l.putBlob(v1.MediaTypeImageManifest, payload)
	if err != nil {
		return "", nil, err
	}
	refs := append([]v1.Descriptor{m, config}, layers...)
	for _, b := range refs[1:] {
		if err := l.link(repo, "_layers", b.Digest); err != nil {
			return "", nil, err
		}
	}
	if err := l.link(repo, "_manifests/revisions", m.Digest); err != nil {
		return "", nil, err
	}
	// Every manifest was "latest" once: the tag's history has it.
	if err := l.link(repo, "_manifests/tags/latest/index", m.Digest); err != nil {
		return "", nil, err
	}
	return m.Digest, refs, nil
}

// writeRepo writes repository i of its group: a tagged manifest (config, 4
// own layers, a shared layer, for orphans a layer shared by orphans only)
// and i%3 untagged older manifests (config, 2 own layers, the first own
// layer of the tagged manifest, and a layer of a pool).
func (l *gcLayout) writeRepo(r *gcRepo, i int, shared, orphanPool, untaggedPool []v1.Descriptor) error {
	var own []v1.Descriptor
	for k := 0; k < 4; k++ {
		d, err := l.layer(fmt.Sprintf("%s/tagged/%d", r.path, k))
		if err != nil {
			return err
		}
		own = append(own, d)
	}
	for k := 0; k < i%3; k++ {
		var layers []v1.Descriptor
		for n := 0; n < 2; n++ {
			d, err := l.layer(fmt.Sprintf("%s/old%d/%d", r.path, k, n))
			if err != nil {
				return err
			}
			layers = append(layers, d)
		}
		layers = append(layers, own[0])
		if k == 0 {
			layers = append(layers, untaggedPool[i%len(untaggedPool)])
		} else {
			layers = append(layers, shared[(i+1)%len(shared)])
		}
		d, _, err := l.image(r.path, fmt.Sprintf("%s/old%d", r.path, k), layers)
		if err != nil {
			return err
		}
		r.old = append(r.old, d)
	}
	layers := append(own, shared[i%len(shared)])
	if !r.live {
		layers = append(layers, orphanPool[i%len(orphanPool)])
	}
	d, refs, err := l.image(r.path, r.path+"/tagged", layers)
	if err != nil {
		return err
	}
	r.tagged = d
	dir := filepath.Join(l.v2, "repositories", filepath.FromSlash(r.path), "_manifests", "tags", "latest", "current")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "link"), []byte(d.String()), 0o644); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.untagged += len(r.old)
	if r.live {
		for _, b := range refs {
			if _, ok := l.keep[b.Digest]; !ok {
				l.keep[b.Digest] = struct{}{}
				l.keepBytes += b.Size
			}
		}
	}
	return nil
}

// generateDataset writes the storage root with 16 goroutines.
func gcGenerateDataset(t *testing.T, root string, size gcSize) *gcDataset {
	t.Helper()
	l := &gcLayout{v2: filepath.Join(root, "docker", "registry", "v2"), keep: make(map[digest.Digest]struct{})}
	pool := func(name string, n int) []v1.Descriptor {
		var out []v1.Descriptor
		for i := 0; i < n; i++ {
			d, err := l.layer(fmt.Sprintf("pool/%s/%d", name, i))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, d)
		}
		return out
	}
	shared, orphanPool, untaggedPool := pool("shared", size.sharedPool), pool("orphans", size.orphanPool), pool("untagged", size.untaggedPool)

	repos := gcPlan(size)
	type job struct {
		r *gcRepo
		i int
	}
	jobs := make(chan job)
	errs := make(chan error, len(repos))
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if err := l.writeRepo(j.r, j.i, shared, orphanPool, untaggedPool); err != nil {
					errs <- fmt.Errorf("%s: %w", j.r.path, err)
				}
			}
		}()
	}
	live, orphan := 0, 0
	for _, r := range repos {
		i := &live
		if !r.live {
			i = &orphan
		}
		jobs <- job{r, *i}
		*i++
	}
	close(jobs)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatalf("writing the dataset: %v", err)
	}
	return &gcDataset{size: size, root: root, repos: repos, blobs: l.blobs, bytes: l.bytes, keep: l.keep, keepBytes: l.keepBytes, untagged: l.untagged}
}

// copyDataset makes a fresh copy of the dataset for one run (same contents
// and modification times) with parallel writes — a tar pipe took 40 s here
// — and flushes it to disk so that each run starts with no pending writeback.
func gcCopyDataset(t testing.TB, src, dst string) {
	t.Helper()
	copyTree(t, src, dst)
}

// gcRunDir is where every run's copy goes, one after the other: the same
// path for every system, since directories created apart land in other
// parts of the disk (see ppStartRegistry).
func gcRunDir(work string) string { return filepath.Join(work, "run") }

// gcRemoveCopy deletes a run's copy and flushes, so that the deletion does
// not weigh on the next run.
func gcRemoveCopy(t testing.TB, dir string) {
	t.Helper()
	removeTree(t, dir)
}

// blobsIn lists the blobs with a data file, and the sum of their sizes.
func gcBlobsIn(t *testing.T, root string) ([]digest.Digest, int64) {
	t.Helper()
	base := filepath.Join(root, "docker", "registry", "v2", "blobs", "sha256")
	prefixes, err := os.ReadDir(base)
	if err != nil {
		t.Fatal(err)
	}
	var out []digest.Digest
	var size int64
	for _, p := range prefixes {
		dirs, err := os.ReadDir(filepath.Join(base, p.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dirs {
			fi, err := os.Stat(filepath.Join(base, p.Name(), d.Name(), "data"))
			if os.IsNotExist(err) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, digest.NewDigestFromEncoded(digest.SHA256, d.Name()))
			size += fi.Size()
		}
	}
	slices.Sort(out)
	return out, size
}

// checkRemaining fails the test unless exactly the expected blobs remain.
func gcCheckRemaining(t *testing.T, ds *gcDataset, who, root string) int64 {
	t.Helper()
	got, size := gcBlobsIn(t, root)
	want := make([]digest.Digest, 0, len(ds.keep))
	for d := range ds.keep {
		want = append(want, d)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		gotSet := make(map[digest.Digest]bool, len(got))
		for _, d := range got {
			gotSet[d] = true
		}
		var missing, extra []digest.Digest
		for _, d := range want {
			if !gotSet[d] {
				missing = append(missing, d)
			}
			delete(gotSet, d)
		}
		for d := range gotSet {
			extra = append(extra, d)
		}
		t.Fatalf("%s: %d blobs remain, want %d: %d referenced blobs deleted (e.g. %v), %d unreferenced kept (e.g. %v)",
			who, len(got), len(want), len(missing), gcFirst(missing), len(extra), gcFirst(extra))
	}
	return ds.bytes - size
}

func gcFirst(ds []digest.Digest) []digest.Digest { return ds[:min(len(ds), 3)] }
