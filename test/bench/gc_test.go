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
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/registry/storage/driver/factory"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/opencontainers/go-digest"

	"github.com/dvcr/dvcr/config"
	"github.com/dvcr/dvcr/gc"
	"github.com/dvcr/dvcr/naming"
	"github.com/dvcr/dvcr/test/dvcrtest"
	"github.com/dvcr/dvcr/test/envtest"
	"github.com/dvcr/dvcr/units"
)

// gcSize is the shape of the dataset.
type gcSize struct {
	live, orphans int // repositories whose resource exists, and whose resource is gone
	cvi, vi       int // per group: the first cvi are cvi/, then vi vi/, the rest vd/
	namespaces    int
	// sharedPool layers are shared by live and orphan tagged manifests
	// (kept); orphanPool layers by orphan tagged manifests only (deleted);
	// untaggedPool layers by untagged manifests of live repositories only
	// (deleted).
	sharedPool, orphanPool, untaggedPool int
}

// gcDefaultSize is the dataset of make bench: 2,000 repositories, about
// 20,000 blobs.
var gcDefaultSize = gcSize{live: 1000, orphans: 1000, cvi: 300, vi: 400, namespaces: 10, sharedPool: 100, orphanPool: 50, untaggedPool: 50}

// gcSizeFromEnv is gcDefaultSize scaled to GCBENCH_REPOS repositories
// (a multiple of 2,000), the opt-in large run.
func gcSizeFromEnv(t *testing.T) (gcSize, bool) {
	v := os.Getenv("GCBENCH_REPOS")
	if v == "" {
		return gcDefaultSize, false
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 2000 || n%2000 != 0 {
		t.Fatalf("GCBENCH_REPOS=%q: want a multiple of 2000 (e.g. 20000)", v)
	}
	k := n / 2000
	d := gcDefaultSize
	return gcSize{live: d.live * k, orphans: d.orphans * k, cvi: d.cvi * k, vi: d.vi * k, namespaces: d.namespaces * k,
		sharedPool: d.sharedPool * k, orphanPool: d.orphanPool * k, untaggedPool: d.untaggedPool * k}, k > 1
}

const (
	gcRuns        = 3
	gcOfflineRuns = 1 // offline mode is the same code as the server's: one run shows it, and keeps make bench under 15 minutes

	// The targets of issue #13: the registry is read-only only while a
	// run decides and detaches; the space is freed close to the speed of
	// the filesystem's deletions; still well ahead of upstream.
	gcTargetWindow      = time.Second
	gcTargetWindowLarge = 3 * time.Second // GCBENCH_REPOS=20000
	gcTargetFloorRatio  = 1.2
	gcTargetSpeedup     = 1.5
	gcTargetRSS         = 100 << 20

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
	size      gcSize
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

	size, large := gcSizeFromEnv(t)
	work := t.TempDir()
	began := time.Now()
	ds := gcGenerateDataset(t, filepath.Join(work, "dataset"), size)
	genTime := time.Since(began)
	t.Logf("dataset: %d repositories, %d blobs, %s of blob data, %d untagged manifests, written in %s; expected to keep %d blobs",
		len(ds.repos), ds.blobs, units.FormatBytes(uint64(ds.bytes)), ds.untagged, genTime.Round(time.Millisecond), len(ds.keep))
	kubeconfig, resources, creation := gcCluster(t, ds)
	if large {
		gcLargeRun(t, root, ds, work, cleaner, kubeconfig)
		return
	}

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

	rep := gcReport{ds: ds, genTime: genTime, resources: resources, creation: creation,
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

// gcCluster starts an API server holding the resources of the live
// repositories.
func gcCluster(t *testing.T, ds *gcDataset) (kubeconfig string, resources int, creation time.Duration) {
	t.Helper()
	cluster := envtest.Start(t)
	for i := 0; i < ds.size.namespaces; i++ {
		cluster.CreateNamespace(t, gcNamespace(i))
	}
	var objs []object
	for _, r := range ds.repos {
		if r.live {
			objs = append(objs, r.obj)
		}
	}
	began := time.Now()
	createAll(t, cluster.Dynamic, objs)
	creation = time.Since(began)
	t.Logf("created %d resources in %s", len(objs), creation.Round(time.Millisecond))
	return cluster.Kubeconfig(t), len(objs), creation
}

// gcLargeRun is the opt-in large run (GCBENCH_REPOS): how the read-only
// window grows with the store. One run through dvcr serve and the floor of
// its deletions; upstream is left out (minutes at this size, and the window
// is the question). Written to docs/bench-gc-large.md.
func gcLargeRun(t *testing.T, root string, ds *gcDataset, work, cleaner, kubeconfig string) {
	t.Helper()
	m := gcRunDVCRServer(t, ds, work, cleaner, kubeconfig, false)
	t.Logf("dvcr serve: %s", m)
	floor := gcFloor(t, ds, work, m.result)
	var b strings.Builder
	b.WriteString("# Benchmark: garbage collection on a large store (opt-in)\n\n")
	fmt.Fprintf(&b, "Generated by `GCBENCH_REPOS=%d go test -tags bench ./test/bench/ -run 'TestBenchGC$'` (not part of `make bench`).\n\n", len(ds.repos))
	writeMachine(&b)
	fmt.Fprintf(&b, "- Dataset: the one of `docs/bench-gc.md` scaled: %d repositories (%d orphans), %d blobs (%s), %d untagged manifests; one run through `dvcr serve`\n\n",
		len(ds.repos), ds.size.orphans, ds.blobs, units.FormatBytes(uint64(ds.bytes)), ds.untagged)
	b.WriteString("| | DVCR (server) |\n|---|---|\n")
	fmt.Fprintf(&b, "| Read-only window | %s |\n", m.readOnly.Round(time.Millisecond))
	fmt.Fprintf(&b, "| Wall time until the space is freed | %s |\n", m.wall.Round(time.Millisecond))
	fmt.Fprintf(&b, "| Floor: the same %d deletions, %d parallel unlinks | %s |\n", floor.entries, treeWorkers, floor.wall.Round(time.Millisecond))
	fmt.Fprintf(&b, "| Wall time / floor | %.2f |\n", m.wall.Seconds()/floor.wall.Seconds())
	fmt.Fprintf(&b, "| Blobs / repositories deleted | %d / %d |\n", m.blobsDeleted, m.repos)
	fmt.Fprintf(&b, "| Peak RSS (server) | %s |\n\n", gcMib(m.rss))
	b.WriteString("| Target | Result | Status |\n|---|---|---|\n")
	fmt.Fprintf(&b, "| Read-only window ≤ %s | %s | %s |\n", gcTargetWindowLarge, m.readOnly.Round(time.Millisecond), verdict(m.readOnly <= gcTargetWindowLarge))
	b.WriteString("\nWhere the time goes (progress lines as the CLI received them):\n\n")
	gcPhaseTable(&b, m.phases)
	fmt.Print("\n" + b.String())
	if err := os.WriteFile(filepath.Join(root, "docs", "bench-gc-large.md"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if m.readOnly > gcTargetWindowLarge {
		t.Errorf("read-only window %s at %d repositories, target %s", m.readOnly, len(ds.repos), gcTargetWindowLarge)
	}
}

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
	ds := gcGenerateDataset(t, filepath.Join(work, "dataset"), gcDefaultSize)
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
