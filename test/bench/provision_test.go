//go:build bench

// The provisioning controller at work: 50 ClusterVirtualImages of 64 MiB
// raw images from a local HTTP server, created at once, against a real
// kube-apiserver (envtest) and `dvcr serve` with provisioning on. Measures
// the time until all are Ready, the overhead per image above the import
// itself (the same 50 files imported with `bin/dvcr import`, as many at once
// as the controller's slots, into the same kind of server, in the same run),
// the controller's API requests (client-go's rest_client_requests_total on
// the debug endpoint) and its RSS. Writes docs/bench-provision.md.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"

	"github.com/dvcr/dvcr/test/dvcrtest"
	"github.com/dvcr/dvcr/test/envtest"
)

const (
	pbDefaultImages      = 50
	pbDefaultSize        = 64 << 20
	pbDefaultConcurrency = 4 // dvcr.provisioning.concurrency's default
	pbDefaultRuns        = 3
	pbExtent             = 4 << 20
	pbOverheadTarget     = time.Second // per image, above the import itself
	pbRequestsTarget     = 20.0        // API requests per image
	pbReadyTimeout       = 10 * time.Minute
	pbIdleWindow         = 5 * time.Second // after all Ready: a hot loop shows here
)

// pbParams are the knobs of a run.
type pbParams struct {
	images, concurrency, runs int
	size                      int64
}

// pbImport is one `dvcr import` of the reference.
type pbImport struct {
	wall    time.Duration // process start to exit
	seconds float64       // the importer's own `seconds`
	cpu     float64       // user+system of the import process
}

// pbImage is one ClusterVirtualImage as the test's watch saw it.
type pbImage struct {
	name      string
	created   time.Time // Create returned
	started   time.Time // first seen in phase Provisioning
	ready     time.Time // first seen Ready
	modified  int       // MODIFIED events (status writes that changed something)
	pending   bool      // seen in phase Pending (queued: all slots busy)
	duration  string    // status.importDuration
	unpacked  string    // status.size.unpackedBytes
	format    string    // status.format
	failedMsg string
}

// pbRun is one run: the import-only reference and the controller.
type pbRun struct {
	// import-only reference
	impWall      time.Duration
	imports      []pbImport
	impServerRSS int64
	impServerCPU float64
	// provisioning
	provWall     time.Duration // first Create to the last Ready seen
	images       []*pbImage
	reqs         map[string]float64 // method -> requests from the process start to the end of the idle window
	reqsByCode   map[string]float64
	startupReqs  float64 // of those, before the first image (discovery, first lists and watches)
	idleReqs     float64 // in the idle window after all Ready
	provIdleRSS  int64   // VmRSS with the controller started, before any image
	provRSS      int64   // VmHWM at the end
	provCPU      float64 // server CPU during the run
	firstStarted time.Duration
	writes       []time.Time // MODIFIED events seen by the watch (status writes)
}

func (r *pbRun) requests() float64 {
	var n float64
	for _, v := range r.reqs {
		n += v
	}
	return n
}

// overhead is the slot time each image costs above the import: the wall
// difference spread over the images the slots carried.
func (r *pbRun) overhead(p pbParams) time.Duration {
	return time.Duration(float64(r.provWall-r.impWall) * float64(p.concurrency) / float64(p.images))
}

// TestBenchProvision: PROVBENCH_IMAGES (default 50), PROVBENCH_SIZE (bytes,
// or with a MiB suffix; a multiple of 4 MiB; default 64 MiB),
// PROVBENCH_CONCURRENCY (default 4) and PROVBENCH_RUNS (default 3) make a
// quick run, which leaves docs/bench-provision.md as it is; the images are
// kept in tmp/bench-provision/ (PROVBENCH_DATA=DIR: there) across runs.
func TestBenchProvision(t *testing.T) {
	began := time.Now()
	root := dvcrtest.RepoRoot(t)
	dvcrBin := filepath.Join(root, "bin", "dvcr")
	if _, err := os.Stat(dvcrBin); err != nil {
		t.Fatalf("%s: %v (run `make build`)", dvcrBin, err)
	}
	p := pbParams{images: pbDefaultImages, size: pbDefaultSize, concurrency: pbDefaultConcurrency, runs: pbDefaultRuns}
	pbEnvInt(t, "PROVBENCH_IMAGES", &p.images, 1, 1000)
	pbEnvInt(t, "PROVBENCH_CONCURRENCY", &p.concurrency, 1, 256)
	pbEnvInt(t, "PROVBENCH_RUNS", &p.runs, 1, 20)
	if v := os.Getenv("PROVBENCH_SIZE"); v != "" {
		num, mult := v, int64(1)
		if n, ok := strings.CutSuffix(v, "MiB"); ok {
			num, mult = n, 1<<20
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n <= 0 || n*mult%pbExtent != 0 {
			t.Fatalf("PROVBENCH_SIZE=%q: want a multiple of 4 MiB (bytes, or with MiB)", v)
		}
		p.size = n * mult
	}
	partial := p.images != pbDefaultImages || p.size != pbDefaultSize || p.concurrency != pbDefaultConcurrency || p.runs < pbDefaultRuns

	data := os.Getenv("PROVBENCH_DATA")
	if data == "" {
		data = filepath.Join(root, "tmp", "bench-provision", fmt.Sprintf("v1-%d", p.size))
	}
	start := time.Now()
	files := pbMakeImages(t, data, p.images, p.size)
	t.Logf("%d images of %d bytes in %s (%s)", len(files), p.size, data, time.Since(start).Round(time.Millisecond))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.FileServer(http.Dir(data))}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Shutdown(context.Background()) })
	srcBase := "http://" + ln.Addr().String() + "/"
	for _, name := range files { // warm the page cache
		f, err := os.Open(filepath.Join(data, name))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, f)
		f.Close()
	}

	cluster := envtest.Start(t)
	kubeconfig := cluster.Kubeconfig(t)
	// The test's own client: no client-side throttling of the creates.
	cfg := *cluster.Config
	cfg.QPS, cfg.Burst = 1000, 1000
	dyn := dynamic.NewForConfigOrDie(&cfg)

	dir := t.TempDir()
	srvDir := filepath.Join(dir, "srv")
	settle := func() {
		syscall.Sync()
		waitDiskIdle(t, dir)
	}
	var runs []*pbRun
	for run := 0; run < p.runs; run++ {
		r := &pbRun{}
		// Alternate the order, so that neither always runs first.
		steps := []func(){
			func() { pbImportOnly(t, p, r, dvcrBin, srvDir, srcBase, files, settle) },
			func() { pbProvision(t, p, r, dvcrBin, srvDir, srcBase, files, kubeconfig, dyn, settle) },
		}
		if run%2 == 1 {
			steps[0], steps[1] = steps[1], steps[0]
		}
		for _, s := range steps {
			s()
		}
		t.Logf("run %d: import-only %s, provisioning %s (overhead %s per image), %.0f API requests (%.1f per image; %s), idle window %.0f; server RSS: import-only %s, provisioning %s (idle %s)",
			run+1, r.impWall.Round(time.Millisecond), r.provWall.Round(time.Millisecond), r.overhead(p).Round(time.Millisecond),
			r.requests(), r.requests()/float64(p.images), pbMethods(r.reqs), r.idleReqs, ibMib(r.impServerRSS), ibMib(r.provRSS), ibMib(r.provIdleRSS))
		runs = append(runs, r)
	}

	report := provisionMarkdown(p, runs, time.Since(began))
	fmt.Print("\n" + report)
	writeReport(t, filepath.Join(root, "docs", "bench-provision.md"), report, partial, "PROVBENCH_IMAGES, _SIZE, _CONCURRENCY or _RUNS")
	for _, tg := range pbTargets(p, runs) {
		if tg.status == verdictMissed {
			t.Errorf("%s: %s (%s)", tg.target, tg.result, tg.status)
		}
	}
	t.Logf("total %s", time.Since(began).Round(time.Second))
}

func pbEnvInt(t *testing.T, name string, v *int, lo, hi int) {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		t.Fatalf("%s=%q: want a whole number from %d to %d", name, s, lo, hi)
	}
	*v = n
}

func pbName(i int) string { return fmt.Sprintf("pb-%02d", i) }

// ---- the import-only reference ----

// pbImportOnly imports the files with `dvcr import`, p.concurrency at once,
// into a fresh `dvcr serve` without provisioning.
func pbImportOnly(t *testing.T, p pbParams, r *pbRun, dvcrBin, srvDir, srcBase string, files []string, settle func()) {
	srv := pbStartServer(t, dvcrBin, srvDir, "", 0)
	defer srv.cleanup(t)
	settle()
	cpu0 := ppCpuTime(t, srv.pid())
	r.imports = make([]pbImport, len(files))
	jobs := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	start := time.Now()
	for w := 0; w < p.concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				imp, err := pbRunImport(dvcrBin, srv.base, srcBase+files[i], "cvi/"+pbName(i), p.size)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				r.imports[i] = imp
				mu.Unlock()
			}
		}()
	}
	for i := range files {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	r.impWall = time.Since(start)
	if firstErr != nil {
		t.Fatalf("%v\nserver: %s", firstErr, srv.stderr)
	}
	r.impServerCPU = (ppCpuTime(t, srv.pid()) - cpu0).Seconds()
	hwm, err := ppVmHWM(srv.pid())
	if err != nil {
		t.Fatal(err)
	}
	r.impServerRSS = hwm
}

func pbRunImport(dvcrBin, registry, src, repo string, size int64) (pbImport, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, dvcrBin, "import", "--registry", registry, "-o", "json", src, repo)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	imp := pbImport{wall: time.Since(start)}
	if err != nil {
		return imp, fmt.Errorf("dvcr import %s: %v\n%s", src, err, stderr.String())
	}
	imp.cpu = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	lines := bytes.Split(bytes.TrimSpace(stdout.Bytes()), []byte("\n"))
	var res ibImportResult
	if err := json.Unmarshal(lines[len(lines)-1], &res); err != nil || res.Format != "raw" || res.UnpackedBytes != size {
		return imp, fmt.Errorf("dvcr import %s: result %s (%v), want a raw image of %d bytes", src, lines[len(lines)-1], err, size)
	}
	imp.seconds = res.Seconds
	return imp, nil
}
