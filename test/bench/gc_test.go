//go:build bench

// TestBenchGC measures a whole garbage collection run (`dvcr-cleaner gc run`)
// on 2,000 repositories (half of them orphans) and about 20,000 blobs in a
// filesystem storage root, through a running `dvcr serve` (the product's
// mode) and offline (no server, the CLI works on storage), against upstream
// `registry garbage-collect --delete-untagged` (v3.1.2) on identical copies
// of the data, after removing the orphan directories by hand. It checks that
// all three leave exactly the expected set of blobs and writes
// docs/bench-gc.md. Run with `go test -tags bench ./test/bench/ -run TestBenchGC`
// after `make build`.
package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/dvcr/dvcr/config"
	"github.com/dvcr/dvcr/gc"
	"github.com/dvcr/dvcr/naming"
	"github.com/dvcr/dvcr/test/dvcrtest"
	"github.com/dvcr/dvcr/test/envtest"
	"github.com/dvcr/dvcr/units"
)

const (
	gcLive       = 1000 // repositories whose resource exists
	gcOrphans    = 1000 // repositories whose resource is gone
	gcCVI        = 300  // per group: the first gcCVI are cvi/, then gcVI vi/, the rest vd/
	gcVI         = 400
	gcNamespaces = 10
	// gcSharedPool layers are shared by live and orphan tagged manifests
	// (kept); gcOrphanPool layers by orphan tagged manifests only (deleted);
	// gcUntaggedPool layers by untagged manifests of live repositories only
	// (deleted).
	gcSharedPool   = 100
	gcOrphanPool   = 50
	gcUntaggedPool = 50
	gcRuns         = 3
	gcOfflineRuns  = 1 // offline mode is the same code as the server's: one run shows it, and keeps make bench under 15 minutes

	gcTargetSpeedup = 3.0
	gcTargetRSS     = 150 << 20

	// gcFindingsMarker starts the hand-written part of docs/bench-gc.md,
	// kept when the test rewrites the generated part above it.
	gcFindingsMarker = "<!-- findings: written by hand, kept by the benchmark -->"

	gcUpstreamRegistryModule = "github.com/distribution/distribution/v3/cmd/registry@v3.1.2"
)

// gcRepo is one repository of the dataset.
type gcRepo struct {
	path   string // cvi/x, vi/ns/x, vd/ns/x
	live   bool
	obj    object // the resource, for live repositories
	tagged digest.Digest
	old    []digest.Digest // untagged manifests
}

// gcDataset is the generated storage root and what GC must leave.
type gcDataset struct {
	root      string // storage root (rootdirectory)
	repos     []*gcRepo
	blobs     int
	bytes     int64
	keep      map[digest.Digest]struct{} // blobs referenced by the live tagged manifests
	keepBytes int64
	untagged  int
}

func TestBenchGC(t *testing.T) {
	root := dvcrtest.RepoRoot(t)
	cleaner := dvcrtest.Binary(t, "dvcr-cleaner")
	dvcrtest.Binary(t, "dvcr")
	upstream := gcUpstreamRegistry(t, root)

	work := t.TempDir()
	began := time.Now()
	ds := gcGenerateDataset(t, filepath.Join(work, "dataset"))
	genTime := time.Since(began)
	t.Logf("dataset: %d repositories, %d blobs, %s of blob data, %d untagged manifests, written in %s; expected to keep %d blobs",
		len(ds.repos), ds.blobs, units.FormatBytes(uint64(ds.bytes)), ds.untagged, genTime.Round(time.Millisecond), len(ds.keep))

	cluster := envtest.Start(t)
	for i := 0; i < gcNamespaces; i++ {
		cluster.CreateNamespace(t, gcNamespace(i))
	}
	var objs []object
	for _, r := range ds.repos {
		if r.live {
			objs = append(objs, r.obj)
		}
	}
	began = time.Now()
	createAll(t, cluster.Dynamic, objs)
	creation := time.Since(began)
	t.Logf("created %d resources in %s", len(objs), creation.Round(time.Millisecond))
	kubeconfig := cluster.Kubeconfig(t)

	var server, offline, up []gcMeasure
	for i := 0; i < gcRuns; i++ {
		m := gcRunDVCRServer(t, ds, work, cleaner, kubeconfig, i == 0)
		t.Logf("run %d dvcr serve: %s", i+1, m)
		server = append(server, m)

		if i < gcOfflineRuns {
			m = gcRunDVCROffline(t, ds, work, cleaner, kubeconfig)
			t.Logf("run %d dvcr offline: %s", i+1, m)
			offline = append(offline, m)
		}

		m = gcRunUpstream(t, ds, work, upstream)
		t.Logf("run %d upstream: %s", i+1, m)
		up = append(up, m)
	}

	rep := gcReport{ds: ds, genTime: genTime, resources: len(objs), creation: creation,
		server: gcSummarize(server), offline: gcSummarize(offline), upstream: gcSummarize(up),
		entries: len(readTree(t, ds.root).dirs) + len(readTree(t, ds.root).files)}
	rep.serverFloor = gcFloor(t, ds, work, server[0].result)
	rep.upstreamFloor = gcFloor(t, ds, work, up[0].result)
	t.Logf("floor: dvcr %s, upstream %s", rep.serverFloor.wall, rep.upstreamFloor.wall)
	text := rep.markdown()
	fmt.Print("\n" + text)
	doc := filepath.Join(root, "docs", "bench-gc.md")
	if prev, err := os.ReadFile(doc); err == nil {
		if i := strings.Index(string(prev), gcFindingsMarker); i >= 0 {
			text += "\n" + string(prev[i:])
		}
	}
	if err := os.WriteFile(doc, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.failures() {
		t.Error(f)
	}
}

// --- dataset ----------------------------------------------------------------

func gcNamespace(i int) string { return fmt.Sprintf("gcbench-%02d", i) }

// gcPlan names the repositories: live ones have a resource, orphans not.
func gcPlan() []*gcRepo {
	var repos []*gcRepo
	for _, live := range []bool{true, false} {
		prefix := "img"
		if !live {
			prefix = "gone"
		}
		n := gcLive
		if !live {
			n = gcOrphans
		}
		for i := 0; i < n; i++ {
			ns := gcNamespace(i % gcNamespaces)
			name := fmt.Sprintf("%s-%04d", prefix, i)
			r := &gcRepo{live: live}
			switch {
			case i < gcCVI:
				r.path = "cvi/" + name
				r.obj = object{gvr: envtest.CVIResource, kind: "ClusterVirtualImage", name: name}
			case i < gcCVI+gcVI:
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
func gcGenerateDataset(t *testing.T, root string) *gcDataset {
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
	shared, orphanPool, untaggedPool := pool("shared", gcSharedPool), pool("orphans", gcOrphanPool), pool("untagged", gcUntaggedPool)

	repos := gcPlan()
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
	return &gcDataset{root: root, repos: repos, blobs: l.blobs, bytes: l.bytes, keep: l.keep, keepBytes: l.keepBytes, untagged: l.untagged}
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

// --- runs -------------------------------------------------------------------

// gcMeasure is one run of one system.
type gcMeasure struct {
	wall         time.Duration // measured outside the process(es)
	recordWall   time.Duration // finishedAt - startedAt of the run's record (DVCR)
	readOnly     time.Duration // DVCR server only
	freed        int64         // blob data bytes gone from storage
	recordFreed  int64         // freed of the record (DVCR)
	blobsDeleted int
	manifests    int   // untagged manifests deleted (DVCR)
	repos        int   // repositories deleted
	rss          int64 // peak RSS of the process doing the work
	cliRSS       int64 // peak RSS of dvcr-cleaner in server mode
	phases       []gcPhase
	load         string // 1-minute load average when the run started (other work on the machine)
	result       *tree  // the storage tree the run left
}

type gcPhase struct {
	at   time.Duration
	line string
}

func (m gcMeasure) String() string {
	s := fmt.Sprintf("wall %s", m.wall.Round(time.Millisecond))
	if m.recordWall > 0 {
		s += fmt.Sprintf(" (record %s)", m.recordWall.Round(time.Millisecond))
	}
	return s + fmt.Sprintf(", read-only %s, freed %s, %d blobs deleted, %d repositories deleted, peak RSS %s, load %s",
		m.readOnly.Round(time.Millisecond), units.FormatBytes(uint64(m.freed)), m.blobsDeleted, m.repos, gcMib(m.rss), m.load)
}

func gcLoad() string {
	data, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(data)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

func gcMib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// gcCommand runs a command under /usr/bin/time, which reports the peak RSS
// of the command alone: the maxrss of a direct child of the test process
// also counts the test process (the child shares its memory until exec).
type gcCommand struct {
	*exec.Cmd
	rssFile string
}

func gcCmd(ctx context.Context, t *testing.T, name string, args ...string) *gcCommand {
	t.Helper()
	if _, err := os.Stat("/usr/bin/time"); err != nil {
		t.Fatalf("/usr/bin/time is needed to measure peak RSS (Debian package time; make deps installs it): %v", err)
	}
	f := filepath.Join(t.TempDir(), "rss")
	return &gcCommand{Cmd: exec.CommandContext(ctx, "/usr/bin/time", append([]string{"-f", "%M", "-o", f, name}, args...)...), rssFile: f}
}

// rss is the peak RSS of the command after it ran.
func (c *gcCommand) rss(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile(c.rssFile)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		t.Fatalf("/usr/bin/time wrote nothing")
	}
	kb, err := strconv.ParseInt(f[len(f)-1], 10, 64)
	if err != nil {
		t.Fatalf("/usr/bin/time: %q: %v", data, err)
	}
	return kb * 1024
}

// runCleaner runs `dvcr-cleaner ... gc run --yes -o json`, timestamping the
// progress lines it prints on stderr, and reads the run's record.
func gcRunCleaner(t *testing.T, cleaner string, args ...string) (gcMeasure, *gc.Result) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := gcCmd(ctx, t, cleaner, append(args, "gc", "run", "--yes", "-o", "json")...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var m gcMeasure
	var stderr strings.Builder
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		line := sc.Text()
		stderr.WriteString(line + "\n")
		if _, rest, ok := strings.Cut(line, " "); ok { // drop the CLI's HH:MM:SS
			line = rest
		}
		m.phases = append(m.phases, gcPhase{time.Since(start), line})
	}
	err = cmd.Wait()
	m.wall = time.Since(start)
	if err != nil {
		t.Fatalf("dvcr-cleaner gc run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	var res gc.Result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("reading the record: %v\n%s", err, stdout.String())
	}
	if !res.Succeeded() || len(res.Warnings) > 0 || res.Sweep == nil {
		t.Fatalf("gc run did not succeed cleanly:\n%s", stdout.String())
	}
	m.recordWall = res.FinishedAt.Sub(res.StartedAt)
	m.readOnly = time.Duration(res.ReadOnlySeconds * float64(time.Second))
	m.recordFreed = res.Freed
	m.blobsDeleted = res.Sweep.BlobsDeleted
	m.manifests = res.Sweep.ManifestsDeleted
	m.repos = len(res.Deleted)
	m.rss = cmd.rss(t)
	return m, &res
}

// checkDVCR checks a DVCR run's record and what remains in storage.
func gcCheckDVCR(t *testing.T, ds *gcDataset, who, data string, m *gcMeasure) {
	t.Helper()
	if m.repos != gcOrphans {
		t.Fatalf("%s: %d repositories deleted, want %d", who, m.repos, gcOrphans)
	}
	if m.manifests != ds.untagged-gcUntaggedOf(ds, false) {
		t.Fatalf("%s: %d untagged manifests deleted, want %d (those of the live repositories)", who, m.manifests, ds.untagged-gcUntaggedOf(ds, false))
	}
	m.freed = gcCheckRemaining(t, ds, who, data)
	if m.freed != m.recordFreed {
		t.Fatalf("%s: the record says %d bytes freed, storage shrank by %d", who, m.recordFreed, m.freed)
	}
	if want := ds.blobs - len(ds.keep); m.blobsDeleted != want {
		t.Fatalf("%s: %d blobs deleted, want %d", who, m.blobsDeleted, want)
	}
}

func gcUntaggedOf(ds *gcDataset, live bool) int {
	n := 0
	for _, r := range ds.repos {
		if r.live == live {
			n += len(r.old)
		}
	}
	return n
}

const gcDVCRSettings = "  gc:\n    gracePeriod: 0s\n"

// runDVCRServer runs GC through a running dvcr serve, the product's mode.
// With validate it first pulls images through the server (the directly
// written layout is what distribution serves) and after the run checks what
// is gone and what is still served.
func gcRunDVCRServer(t *testing.T, ds *gcDataset, work, cleaner, kubeconfig string, validate bool) gcMeasure {
	t.Helper()
	data := gcRunDir(work)
	gcCopyDataset(t, ds.root, data)
	defer gcRemoveCopy(t, data)
	load := gcLoad()
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{DataDir: data, DVCR: gcDVCRSettings, Env: []string{"KUBECONFIG=" + kubeconfig}})
	defer srv.Stop(t)
	pid := gcServerPID(t, srv.ConfigPath)
	var live, orphan *gcRepo
	for _, r := range ds.repos {
		if r.live && len(r.old) > 0 && live == nil {
			live = r
		}
		if !r.live && orphan == nil {
			orphan = r
		}
	}
	if validate {
		gcPull(t, srv.URL(), live.path, "latest", live.tagged, http.StatusOK)
		gcPull(t, srv.URL(), live.path, live.old[0].String(), live.old[0], http.StatusOK)
		gcPull(t, srv.URL(), orphan.path, "latest", orphan.tagged, http.StatusOK)
	}
	m, _ := gcRunCleaner(t, cleaner, "--config", srv.ConfigPath, "--kubeconfig", kubeconfig)
	m.cliRSS = m.rss
	m.load = load
	m.rss = gcVmHWM(t, pid)
	if validate {
		gcPull(t, srv.URL(), live.path, "latest", live.tagged, http.StatusOK)
		gcPull(t, srv.URL(), live.path, live.old[0].String(), live.old[0], http.StatusNotFound)
		gcPull(t, srv.URL(), orphan.path, "latest", orphan.tagged, http.StatusNotFound)
	}
	srv.Stop(t)
	if m.readOnly <= 0 {
		t.Fatalf("dvcr serve: the record has no read-only time")
	}
	gcCheckDVCR(t, ds, "dvcr serve", data, &m)
	m.result = readTree(t, data)
	return m
}

// runDVCROffline runs GC with no server: the CLI works on storage itself.
func gcRunDVCROffline(t *testing.T, ds *gcDataset, work, cleaner, kubeconfig string) gcMeasure {
	t.Helper()
	data := gcRunDir(work)
	gcCopyDataset(t, ds.root, data)
	defer gcRemoveCopy(t, data)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yml")
	text := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\ndvcr:\n  adminSocket: %s\n%s",
		data, filepath.Join(dir, "admin.sock"), gcDVCRSettings)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	load := gcLoad()
	m, _ := gcRunCleaner(t, cleaner, "--config", cfg, "--kubeconfig", kubeconfig)
	m.load = load
	gcCheckDVCR(t, ds, "dvcr offline", data, &m)
	return m
}

// runUpstream removes the orphan repositories with rm -rf and runs upstream
// `registry garbage-collect --delete-untagged` (its listing on stdout goes
// to /dev/null).
func gcRunUpstream(t *testing.T, ds *gcDataset, work, registry string) gcMeasure {
	t.Helper()
	data := gcRunDir(work)
	gcCopyDataset(t, ds.root, data)
	defer gcRemoveCopy(t, data)
	cfg := filepath.Join(work, "upstream.yml")
	text := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n", data)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-rf"}
	for _, r := range ds.repos {
		if !r.live {
			args = append(args, filepath.Join(data, "docker", "registry", "v2", "repositories", filepath.FromSlash(r.path)))
		}
	}
	m := gcMeasure{load: gcLoad()}
	start := time.Now()
	rm := gcCmd(context.Background(), t, "rm", args...)
	if out, err := rm.CombinedOutput(); err != nil {
		t.Fatalf("rm -rf orphans: %v\n%s", err, out)
	}
	rmTime := time.Since(start)
	collect := gcCmd(context.Background(), t, registry, "garbage-collect", "--delete-untagged", cfg)
	var stderr bytes.Buffer
	collect.Stderr = &stderr
	if err := collect.Run(); err != nil {
		t.Fatalf("registry garbage-collect: %v\n%s", err, stderr.String())
	}
	m.wall = time.Since(start)
	m.phases = []gcPhase{{rmTime, "rm -rf of the orphan repositories done"}, {m.wall, "registry garbage-collect done"}}
	m.rss = max(rm.rss(t), collect.rss(t))
	m.repos = gcOrphans
	got, _ := gcBlobsIn(t, data)
	m.blobsDeleted = ds.blobs - len(got)
	m.freed = gcCheckRemaining(t, ds, "upstream", data)
	m.result = readTree(t, data)
	return m
}

// upstreamRegistry returns bin/registry, building it when missing.
func gcUpstreamRegistry(t *testing.T, root string) string {
	t.Helper()
	bin := filepath.Join(root, "bin", "registry")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	cmd := exec.Command("go", "install", gcUpstreamRegistryModule)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOBIN="+filepath.Join(root, "bin"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install %s: %v\n%s", gcUpstreamRegistryModule, err, out)
	}
	return bin
}

// serverPID finds the dvcr serve process started with config.
func gcServerPID(t *testing.T, config string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if len(args) >= 2 && filepath.Base(args[0]) == "dvcr" && args[1] == "serve" && slices.Contains(args, config) {
			return pid
		}
	}
	t.Fatalf("no dvcr serve process with --config %s", config)
	return 0
}

// vmHWM is the peak resident set size of a running process.
func gcVmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb * 1024
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// pull fetches repo:ref through the registry and, when it is served, every
// blob of the image, checking the digests.
func gcPull(t *testing.T, base, repo, ref string, want digest.Digest, status int) {
	t.Helper()
	get := func(url, accept string) (int, []byte) {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}
	code, body := get(base+"/v2/"+repo+"/manifests/"+ref, v1.MediaTypeImageManifest)
	if code != status {
		t.Fatalf("GET %s manifest %s: %d, want %d: %s", repo, ref, code, status, body)
	}
	if code != http.StatusOK {
		return
	}
	if d := digest.FromBytes(body); d != want {
		t.Fatalf("GET %s manifest %s: digest %s, want %s", repo, ref, d, want)
	}
	var m v1.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	for _, b := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		code, data := get(base+"/v2/"+repo+"/blobs/"+b.Digest.String(), "")
		if code != http.StatusOK || digest.FromBytes(data) != b.Digest || int64(len(data)) != b.Size {
			t.Fatalf("GET %s blob %s: %d, %d bytes", repo, b.Digest, code, len(data))
		}
	}
}

// --- report -----------------------------------------------------------------

// gcSummary is the median of the runs of one system.
type gcSummary struct {
	runs   []gcMeasure
	median gcMeasure // the run with the median wall time
	wall   time.Duration
	ro     time.Duration
	rss    int64 // max over runs
	cliRSS int64
}

func gcSummarize(ms []gcMeasure) gcSummary {
	sorted := slices.Clone(ms)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].wall < sorted[j].wall })
	s := gcSummary{runs: ms, median: sorted[len(sorted)/2]}
	s.wall = s.median.wall
	ros := make([]time.Duration, 0, len(ms))
	for _, m := range ms {
		ros = append(ros, m.readOnly)
		s.rss = max(s.rss, m.rss)
		s.cliRSS = max(s.cliRSS, m.cliRSS)
	}
	slices.Sort(ros)
	s.ro = ros[len(ros)/2]
	return s
}

func (s gcSummary) walls() string {
	var ws []string
	for _, m := range s.runs {
		ws = append(ws, m.wall.Round(time.Millisecond).String()+" @load "+m.load)
	}
	return strings.Join(ws, ", ")
}

type gcReport struct {
	ds                         *gcDataset
	genTime                    time.Duration
	resources                  int
	creation                   time.Duration
	server, offline, upstream  gcSummary
	entries                    int // files and directories in the dataset
	serverFloor, upstreamFloor gcFloorMeasure
}

// gcFloorMeasure is the least time this machine needs to delete what a
// system deleted: the same directory entries, unlinked by treeWorkers
// goroutines, with nothing read and nothing decided.
type gcFloorMeasure struct {
	wall    time.Duration
	entries int // files and directories deleted
}

func gcFloor(t *testing.T, ds *gcDataset, work string, result *tree) gcFloorMeasure {
	t.Helper()
	data := gcRunDir(work)
	gcCopyDataset(t, ds.root, data)
	defer gcRemoveCopy(t, data)
	before := readTree(t, data)
	wall := deleteFloor(t, data, result)
	return gcFloorMeasure{wall: wall, entries: len(before.dirs) + len(before.files) - len(result.dirs) - len(result.files)}
}

func (r gcReport) speedup(s gcSummary) float64 {
	return r.upstream.wall.Seconds() / s.wall.Seconds()
}

// failures lists the missed targets.
func (r gcReport) failures() []string {
	var out []string
	if rec := r.server.median.recordWall; r.server.ro > rec {
		out = append(out, fmt.Sprintf("read-only window %s longer than the run %s", r.server.ro, rec))
	}
	if sp := r.speedup(r.server); sp < gcTargetSpeedup {
		out = append(out, fmt.Sprintf("dvcr serve run is %.2fx faster than upstream, target %.0fx", sp, gcTargetSpeedup))
	}
	if r.server.rss > gcTargetRSS {
		out = append(out, fmt.Sprintf("dvcr serve peak RSS %s exceeds %d MiB", gcMib(r.server.rss), gcTargetRSS>>20))
	}
	if r.offline.rss > gcTargetRSS {
		out = append(out, fmt.Sprintf("dvcr-cleaner (offline) peak RSS %s exceeds %d MiB", gcMib(r.offline.rss), gcTargetRSS>>20))
	}
	return out
}

func (r gcReport) markdown() string {
	ds := r.ds
	var b strings.Builder
	b.WriteString("# Benchmark: garbage collection run against upstream `registry garbage-collect`\n\n")
	b.WriteString("Generated by `go test -tags bench ./test/bench/ -run TestBenchGC` (`test/bench/gc_test.go`, after `make build`).\n\n")
	writeMachine(&b)
	fmt.Fprintf(&b, "- Go: %s, %s/%s; upstream: `bin/registry` built from `%s`\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, gcUpstreamRegistryModule)
	fmt.Fprintf(&b, "- Cluster: envtest kube-apiserver with the %d resources of the live repositories (%d ClusterVirtualImages, %d VirtualImages, %d VirtualDisks not Ready, in %d namespaces), created with %d parallel clients in %s\n",
		r.resources, gcCVI, gcVI, gcLive-gcCVI-gcVI, gcNamespaces, workers, r.creation.Round(time.Millisecond))
	fmt.Fprintf(&b, "- Storage: filesystem driver, one dataset written in %s and copied before every run with %d parallel writers (identical content, modes and modification times) and `sync`ed; each copy is deleted and `sync`ed after its run:\n", r.genTime.Round(time.Millisecond), treeWorkers)
	fmt.Fprintf(&b, "  - %d files and directories; %d repositories: %d live (cvi/vi/vd with their resource), %d orphans (same split, resource absent)\n", r.entries, len(ds.repos), gcLive, gcOrphans)
	fmt.Fprintf(&b, "  - each: a manifest tagged `latest` (config, 4 own layers, 1 of %d layers shared by live and orphan repositories, for orphans 1 of %d layers shared by orphans only) and 0–2 older untagged manifests (config, 2 own layers, a layer of the tagged manifest, a layer shared with other repositories); %d untagged manifests in all (%d in live repositories)\n",
		gcSharedPool, gcOrphanPool, ds.untagged, gcUntaggedOf(ds, true))
	fmt.Fprintf(&b, "  - %d blobs of 1–4 KiB, %s (%d bytes) of blob data; a correct run keeps exactly the %d blobs of the live tagged images (%s) and deletes %d\n",
		ds.blobs, units.FormatBytes(uint64(ds.bytes)), ds.bytes, len(ds.keep), units.FormatBytes(uint64(ds.keepBytes)), ds.blobs-len(ds.keep))
	b.WriteString("- DVCR (server): `bin/dvcr serve` (gracePeriod 0s) and `dvcr-cleaner gc run --yes -o json` through the admin socket; wall time measured around the CLI; peak RSS = VmHWM of the server process after the run (startup included)\n")
	b.WriteString("- DVCR (offline): the same command with no server running: the CLI collects on storage itself; peak RSS = the CLI's maxrss\n")
	b.WriteString("- Upstream: `rm -rf` of the 1,000 orphan repository directories, then `bin/registry garbage-collect --delete-untagged config.yml` (stdout to /dev/null); wall time of both; peak RSS = maxrss of garbage-collect\n")
	fmt.Fprintf(&b, "- Floor: on another copy, the very files and directories a system's first run deleted are unlinked by %d goroutines (files, then directories deepest first), reading nothing: the least time this filesystem needs for that run's deletions; measured once per system\n", treeWorkers)
	b.WriteString("- Correctness: after every run the sorted list of remaining blob digests is compared with the expected set (so DVCR and upstream leave the same blobs), the images of live repositories are pulled through the server, the orphans and untagged manifests answer 404\n\n")

	fmt.Fprintf(&b, "Median of %d runs each, DVCR (offline) %d (fresh copy each run):\n\n", gcRuns, gcOfflineRuns)
	b.WriteString("| | DVCR (server) | DVCR (offline) | upstream (rm -rf + garbage-collect) |\n|---|---|---|---|\n")
	fmt.Fprintf(&b, "| Wall time, median (runs) | %s (%s) | %s (%s) | %s (%s) |\n",
		r.server.wall.Round(time.Millisecond), r.server.walls(), r.offline.wall.Round(time.Millisecond), r.offline.walls(), r.upstream.wall.Round(time.Millisecond), r.upstream.walls())
	fmt.Fprintf(&b, "| Run time in the record (finishedAt − startedAt) | %s | %s | — |\n",
		r.server.median.recordWall.Round(time.Millisecond), r.offline.median.recordWall.Round(time.Millisecond))
	fmt.Fprintf(&b, "| Read-only time | %s | — (no server) | whole run (registry must be stopped or read-only) |\n", r.server.ro.Round(time.Millisecond))
	fmt.Fprintf(&b, "| Freed (blob data) | %s (%d B) | %s (%d B) | %s (%d B) |\n",
		units.FormatBytes(uint64(r.server.median.freed)), r.server.median.freed, units.FormatBytes(uint64(r.offline.median.freed)), r.offline.median.freed,
		units.FormatBytes(uint64(r.upstream.median.freed)), r.upstream.median.freed)
	fmt.Fprintf(&b, "| Blobs deleted | %d | %d | %d |\n", r.server.median.blobsDeleted, r.offline.median.blobsDeleted, r.upstream.median.blobsDeleted)
	fmt.Fprintf(&b, "| Repositories / untagged manifests deleted | %d / %d | %d / %d | %d / (not counted) |\n",
		r.server.median.repos, r.server.median.manifests, r.offline.median.repos, r.offline.median.manifests, r.upstream.median.repos)
	fmt.Fprintf(&b, "| Peak RSS (max of runs) | %s (CLI %s) | %s | %s |\n", gcMib(r.server.rss), gcMib(r.server.cliRSS), gcMib(r.offline.rss), gcMib(r.upstream.rss))
	fmt.Fprintf(&b, "| Speed-up, upstream wall / DVCR wall | %.2f× | %.2f× | 1× |\n", r.speedup(r.server), r.speedup(r.offline))
	fmt.Fprintf(&b, "| Files and directories deleted | %d | (same as server) | %d |\n", r.serverFloor.entries, r.upstreamFloor.entries)
	fmt.Fprintf(&b, "| Floor: the same deletions, %d parallel unlinks, nothing read | %s | (same as server) | %s |\n",
		treeWorkers, r.serverFloor.wall.Round(time.Millisecond), r.upstreamFloor.wall.Round(time.Millisecond))
	fmt.Fprintf(&b, "| Wall time / floor | %.2f | %.2f | %.2f |\n\n", r.server.wall.Seconds()/r.serverFloor.wall.Seconds(),
		r.offline.wall.Seconds()/r.serverFloor.wall.Seconds(), r.upstream.wall.Seconds()/r.upstreamFloor.wall.Seconds())

	b.WriteString("| Target | Result | Status |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| Read-only window ≤ run time | %s ≤ %s | %s |\n", r.server.ro.Round(time.Millisecond), r.server.median.recordWall.Round(time.Millisecond), verdict(r.server.ro <= r.server.median.recordWall))
	fmt.Fprintf(&b, "| Whole run ≥ %.0f× faster than upstream (server mode) | %.2f× (at most %.2f× on this machine: upstream wall / DVCR floor) | %s |\n",
		gcTargetSpeedup, r.speedup(r.server), r.upstream.wall.Seconds()/r.serverFloor.wall.Seconds(), verdict(r.speedup(r.server) >= gcTargetSpeedup))
	fmt.Fprintf(&b, "| Peak RSS < %d MiB (server) | %s | %s |\n", gcTargetRSS>>20, gcMib(r.server.rss), verdict(r.server.rss <= gcTargetRSS))
	fmt.Fprintf(&b, "| Peak RSS < %d MiB (offline CLI) | %s | %s |\n", gcTargetRSS>>20, gcMib(r.offline.rss), verdict(r.offline.rss <= gcTargetRSS))
	b.WriteString("| Same blobs remain as upstream (and as expected) | identical | met |\n\n")

	b.WriteString("Where the time goes in the median DVCR (server) run (progress lines as the CLI received them, time since the CLI started; intermediate `i/N` lines dropped):\n\n")
	b.WriteString("| at | progress |\n|---|---|\n")
	for _, p := range gcElide(r.server.median.phases) {
		fmt.Fprintf(&b, "| %s | %s |\n", p.at.Round(time.Millisecond), strings.ReplaceAll(p.line, "|", "\\|"))
	}
	b.WriteString("\nThe same for the median DVCR (offline) run:\n\n| at | progress |\n|---|---|\n")
	for _, p := range gcElide(r.offline.median.phases) {
		fmt.Fprintf(&b, "| %s | %s |\n", p.at.Round(time.Millisecond), strings.ReplaceAll(p.line, "|", "\\|"))
	}
	b.WriteString("\nUpstream (median run):\n\n| at | step |\n|---|---|\n")
	for _, p := range r.upstream.median.phases {
		fmt.Fprintf(&b, "| %s | %s |\n", p.at.Round(time.Millisecond), p.line)
	}
	return b.String()
}

// gcElide drops the intermediate "phase: i/N" progress lines, keeping the
// phase boundaries.
func gcElide(ps []gcPhase) []gcPhase {
	var out []gcPhase
	for _, p := range ps {
		if m := gcCountRE.FindStringSubmatch(p.line); m != nil && m[1] != m[2] {
			continue
		}
		out = append(out, p)
	}
	return out
}

var gcCountRE = regexp.MustCompile(`: (\d+)/(\d+)\b`)

// TestBenchGCCollector runs the collector in process, offline, on the GC
// dataset with a fixed cluster inventory (no API server), and reports the
// phases and the CPU time of each run: the quick loop for profiling the
// collector (-cpuprofile) and trying settings. GCBENCH_RUNS runs (default 3).
func TestBenchGCCollector(t *testing.T) {
	runs := 3
	if v := os.Getenv("GCBENCH_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("GCBENCH_RUNS=%q: want a whole number of runs, 1 or more", v)
		}
		runs = n
	}
	work := t.TempDir()
	ds := gcGenerateDataset(t, filepath.Join(work, "dataset"))
	inv := &gc.ClusterInventory{}
	for _, r := range ds.repos {
		if r.live {
			repo, err := naming.ParseRepository(r.path)
			if err != nil {
				t.Fatal(err)
			}
			inv.Resources = append(inv.Resources, gc.Resource{Kind: repo.Kind, Namespace: repo.Namespace, Name: repo.Name})
		}
	}
	for run := 1; run <= runs; run++ {
		data := filepath.Join(work, "data")
		gcCopyDataset(t, ds.root, data)
		driver, err := factory.Create(context.Background(), "filesystem", map[string]any{"rootdirectory": data})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		var phases []gcPhase
		c := &gc.Collector{
			Driver:    driver,
			NewLister: func() (gc.Lister, error) { return staticLister{inv}, nil },
			Settings:  config.DVCR{GC: config.GC{Timeout: time.Hour}},
		}
		cpu := gcCPUTime()
		res, err := c.Run(context.Background(), "manual", func(line string) {
			phases = append(phases, gcPhase{time.Since(start), line})
		})
		wall, cpu := time.Since(start), gcCPUTime()-cpu
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, p := range gcElide(phases) {
			lines = append(lines, fmt.Sprintf("%s %s", p.at.Round(time.Millisecond), p.line))
		}
		t.Logf("run %d: wall %s, CPU %s (%.0f%% of one core), %d repositories and %d blobs deleted, load %s\n%s",
			run, wall.Round(time.Millisecond), cpu.Round(time.Millisecond), 100*cpu.Seconds()/wall.Seconds(),
			len(res.Deleted), res.Sweep.BlobsDeleted, gcLoad(), strings.Join(lines, "\n"))
		gcCheckRemaining(t, ds, "collector", data)
		gcRemoveCopy(t, data)
	}
}

// staticLister is a cluster that always holds the same resources.
type staticLister struct{ inv *gc.ClusterInventory }

func (l staticLister) List(context.Context) (*gc.ClusterInventory, error) { return l.inv, nil }

// gcCPUTime is the user+system CPU time of this process so far.
func gcCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
