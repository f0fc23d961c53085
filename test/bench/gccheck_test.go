//go:build bench

// Package bench measures `dvcr-cleaner gc check` at scale: 10,000 resources
// in a real kube-apiserver (envtest) and 10,000 repositories in a filesystem
// storage root. Run through `make bench` (hack/bench.sh); the build tag keeps
// it out of `go test ./...`.
package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/dvcr/dvcr/test/dvcrtest"
	"github.com/dvcr/dvcr/test/envtest"
)

const (
	namespaces = 10
	numCVI     = 1000
	numVI      = 5000
	numVD      = 4000
	workers    = 16
	runs       = 3
	// Every tenth resource has no repository; every tenth repository has no
	// resource (an orphan). Every readyEvery-th VirtualDisk is Ready.
	readyEvery = 15

	targetWall = 3 * time.Second
	targetRSS  = 150 << 20
)

type object struct {
	gvr      schema.GroupVersionResource
	kind     string
	ns, name string
	repo     string // "" when the resource has no repository
	ready    bool
}

// plan lists the resources and the repositories of the benchmark.
func plan() (objs []object, orphans []string) {
	for i := 0; i < numCVI; i++ {
		o := object{gvr: envtest.CVIResource, kind: "ClusterVirtualImage", name: fmt.Sprintf("cvi-%05d", i)}
		if i%10 != 9 {
			o.repo = "cvi/" + o.name
		} else {
			orphans = append(orphans, fmt.Sprintf("cvi/gone-cvi-%05d", i))
		}
		objs = append(objs, o)
	}
	for i := 0; i < numVI; i++ {
		ns := fmt.Sprintf("bench-%02d", i%namespaces)
		o := object{gvr: envtest.VIResource, kind: "VirtualImage", ns: ns, name: fmt.Sprintf("vi-%05d", i)}
		if i%10 != 9 {
			o.repo = "vi/" + ns + "/" + o.name
		} else {
			orphans = append(orphans, fmt.Sprintf("vi/%s/gone-vi-%05d", ns, i))
		}
		objs = append(objs, o)
	}
	for i := 0; i < numVD; i++ {
		ns := fmt.Sprintf("bench-%02d", i%namespaces)
		o := object{gvr: envtest.VDResource, kind: "VirtualDisk", ns: ns, name: fmt.Sprintf("vd-%05d", i), ready: i%readyEvery == 0}
		if i%10 != 9 {
			o.repo = "vd/" + ns + "/" + o.name
		} else {
			orphans = append(orphans, fmt.Sprintf("vd/%s/gone-vd-%05d", ns, i))
		}
		objs = append(objs, o)
	}
	return objs, orphans
}

func TestBenchGCCheck(t *testing.T) {
	root := dvcrtest.RepoRoot(t)
	cleaner := filepath.Join(root, "bin", "dvcr-cleaner")
	if _, err := os.Stat(cleaner); err != nil {
		t.Fatalf("%s: %v (run `make build`)", cleaner, err)
	}

	cluster := envtest.Start(t)
	objs, orphans := plan()

	for i := 0; i < namespaces; i++ {
		cluster.CreateNamespace(t, fmt.Sprintf("bench-%02d", i))
	}
	began := time.Now()
	createAll(t, cluster.Dynamic, objs)
	creation := time.Since(began)
	t.Logf("created %d resources in %s", len(objs), creation.Round(time.Millisecond))

	dir := t.TempDir()
	storageRoot := filepath.Join(dir, "data")
	var repos []string
	expectEligible := len(orphans)
	for _, o := range objs {
		if o.repo != "" {
			repos = append(repos, o.repo)
			if o.ready {
				expectEligible++
			}
		}
	}
	repos = append(repos, orphans...)
	began = time.Now()
	writeRepos(t, storageRoot, repos)
	t.Logf("wrote %d repositories in %s", len(repos), time.Since(began).Round(time.Millisecond))

	cfg := filepath.Join(dir, "config.yml")
	cfgText := "version: 0.1\nstorage: {filesystem: {rootdirectory: " + storageRoot + "}}\nhttp: {addr: 127.0.0.1:0}\ndvcr: {adminSocket: " + filepath.Join(dir, "admin.sock") + "}\n"
	if err := os.WriteFile(cfg, []byte(cfgText), 0o644); err != nil {
		t.Fatal(err)
	}
	kubeconfig := cluster.Kubeconfig(t)

	var walls []time.Duration
	var maxRSS int64
	for i := 0; i < runs; i++ {
		var stdout, stderr bytes.Buffer
		// Under /usr/bin/time: the maxrss of a direct child also counts
		// this test process, grown by the benchmarks before this one.
		cmd := gcCmd(context.Background(), t, cleaner, "--config", cfg, "--kubeconfig", kubeconfig, "gc", "check")
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		err := cmd.Run()
		wall := time.Since(start)
		if err != nil {
			t.Fatalf("run %d: gc check: %v\nstderr:\n%s", i+1, err, stderr.String())
		}
		rss := cmd.rss(t)
		t.Logf("run %d: wall %s, peak RSS %.1f MiB", i+1, wall.Round(time.Millisecond), float64(rss)/(1<<20))
		walls = append(walls, wall)
		maxRSS = max(maxRSS, rss)
		if i == 0 {
			checkOutput(t, stdout.String(), len(repos), len(orphans), expectEligible)
		}
	}
	sort.Slice(walls, func(i, j int) bool { return walls[i] < walls[j] })
	median := walls[len(walls)/2]

	report := markdown(len(objs), len(repos), expectEligible, creation, walls, median, maxRSS)
	fmt.Print("\n" + report)
	if err := os.WriteFile(filepath.Join(root, "docs", "bench-gc-check.md"), []byte(report), 0o644); err != nil {
		t.Fatal(err)
	}
	if median > targetWall {
		t.Errorf("median wall time %s exceeds the %s target", median.Round(time.Millisecond), targetWall)
	}
	if maxRSS > targetRSS {
		t.Errorf("peak RSS %.1f MiB exceeds the %d MiB target", float64(maxRSS)/(1<<20), targetRSS>>20)
	}
}

// createAll creates the resources with a pool of workers, then sets
// status.phase of the Ready VirtualDisks through the status subresource.
func createAll(t *testing.T, dyn dynamic.Interface, objs []object) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	jobs := make(chan object)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		done     atomic.Int64
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range jobs {
				if ctx.Err() != nil {
					continue
				}
				if err := createOne(ctx, dyn, o); err != nil {
					fail(err)
					continue
				}
				done.Add(1)
			}
		}()
	}
	for _, o := range objs {
		jobs <- o
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("creating resources (%d done): %v", done.Load(), firstErr)
	}
}

func createOne(ctx context.Context, dyn dynamic.Interface, o object) error {
	var client dynamic.ResourceInterface = dyn.Resource(o.gvr)
	if o.ns != "" {
		client = dyn.Resource(o.gvr).Namespace(o.ns)
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": envtest.Group + "/" + envtest.Version,
		"kind":       o.kind,
		"metadata":   map[string]any{"name": o.name},
		"spec":       envtest.UploadSpec(),
	}}
	created, err := client.Create(ctx, obj, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("creating %s %s/%s: %w", o.gvr.Resource, o.ns, o.name, err)
	}
	if !o.ready {
		return nil
	}
	if err := unstructured.SetNestedField(created.Object, "Ready", "status", "phase"); err != nil {
		return err
	}
	if _, err := client.UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("updating status of %s %s/%s: %w", o.gvr.Resource, o.ns, o.name, err)
	}
	return nil
}

// writeRepos lays out each repository as the registry stores a repository
// with one tagged manifest: the tag's current link and the revision link.
func writeRepos(t *testing.T, storageRoot string, repos []string) {
	t.Helper()
	base := filepath.Join(storageRoot, "docker", "registry", "v2", "repositories")
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	ch := make(chan string)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for repo := range ch {
				sum := sha256.Sum256([]byte(repo))
				hexSum := hex.EncodeToString(sum[:])
				link := []byte("sha256:" + hexSum)
				m := filepath.Join(base, filepath.FromSlash(repo), "_manifests")
				for _, p := range []string{
					filepath.Join(m, "tags", "latest", "current", "link"),
					filepath.Join(m, "revisions", "sha256", hexSum, "link"),
				} {
					if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
						select {
						case errs <- err:
						default:
						}
						continue
					}
					if err := os.WriteFile(p, link, 0o644); err != nil {
						select {
						case errs <- err:
						default:
						}
					}
				}
			}
		}()
	}
	for _, r := range repos {
		ch <- r
	}
	close(ch)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("writing repositories: %v", err)
	default:
	}
}

var foundRE = regexp.MustCompile(`^Found (\d+) cvi, (\d+) vi, (\d+) vd (manifests in registry|resources in cluster)$`)

// checkOutput checks the counts of the report and that the eligible rows are
// the orphans plus the Ready VirtualDisks that have a repository.
func checkOutput(t *testing.T, out string, repos, orphans, eligible int) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) < 2 {
		t.Fatalf("gc check output too short:\n%s", out)
	}
	wantTotals := []int{repos, numCVI + numVI + numVD}
	for i := 0; i < 2; i++ {
		m := foundRE.FindStringSubmatch(lines[i])
		if m == nil {
			t.Fatalf("line %d of gc check output: %q, want \"Found N cvi, N vi, N vd ...\"", i+1, lines[i])
		}
		total := 0
		for _, s := range m[1:4] {
			n, _ := strconv.Atoi(s)
			total += n
		}
		if total != wantTotals[i] {
			t.Errorf("line %d: %q: total %d, want %d", i+1, lines[i], total, wantTotals[i])
		}
	}
	rows, inTable := 0, false
	for _, l := range lines[2:] {
		if strings.HasPrefix(l, "KIND ") {
			inTable = true
			continue
		}
		if inTable && strings.TrimSpace(l) != "" {
			rows++
		}
	}
	if rows != eligible {
		t.Errorf("gc check lists %d eligible images, want %d (%d orphans + %d Ready VirtualDisks)", rows, eligible, orphans, eligible-orphans)
	}
	t.Logf("output sanity: %q / %q; %d eligible rows (%d orphans + %d Ready VirtualDisks)", lines[0], lines[1], rows, orphans, eligible-orphans)
}

func markdown(resources, repos, eligible int, creation time.Duration, walls []time.Duration, median time.Duration, rss int64) string {
	var ws []string
	for _, w := range walls {
		ws = append(ws, w.Round(time.Millisecond).String())
	}
	var b strings.Builder
	b.WriteString("# Benchmark: `dvcr-cleaner gc check`\n\n")
	b.WriteString("Generated by `make bench` (`hack/bench.sh`, `test/bench/gccheck_test.go`).\n\n")
	writeMachine(&b)
	fmt.Fprintf(&b, "- Go: %s, %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(&b, "- Cluster: envtest kube-apiserver with %d resources (%d ClusterVirtualImages, %d VirtualImages, %d VirtualDisks in %d namespaces), created with %d parallel clients in %s\n",
		resources, numCVI, numVI, numVD, namespaces, workers, creation.Round(time.Millisecond))
	fmt.Fprintf(&b, "- Storage: filesystem root with %d repositories (%d eligible: orphans and Ready VirtualDisks)\n\n", repos, eligible)
	b.WriteString("| Metric | Result | Target | Status |\n|---|---|---|---|\n")
	fmt.Fprintf(&b, "| Wall time (median of %d; runs: %s) | %s | < %s | %s |\n", len(walls), strings.Join(ws, ", "), median.Round(time.Millisecond), targetWall, verdict(median <= targetWall))
	fmt.Fprintf(&b, "| Peak RSS (max of %d) | %.1f MiB | < %d MiB | %s |\n", len(walls), float64(rss)/(1<<20), targetRSS>>20, verdict(rss <= targetRSS))
	fmt.Fprintf(&b, "| Resource creation (setup, not measured against a target) | %s | — | — |\n", creation.Round(time.Millisecond))
	return b.String()
}
