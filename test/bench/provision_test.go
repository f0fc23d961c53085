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
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
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

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
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

// ---- provisioning ----

func pbProvision(t *testing.T, p pbParams, r *pbRun, dvcrBin, srvDir, srcBase string, files []string, kubeconfig string, dyn dynamic.Interface, settle func()) {
	srv := pbStartServer(t, dvcrBin, srvDir, kubeconfig, p.concurrency)
	defer srv.cleanup(t)
	defer pbDeleteAll(t, dyn)
	// The controller is up when its informers have listed and watched:
	// the request counter stops moving.
	pbWaitSettled(t, srv)
	settle()
	m0 := pbMetrics(t, srv.metricsURL())
	r.provIdleRSS = pbVmRSS(t, srv.pid())
	cpu0 := ppCpuTime(t, srv.pid())

	res := dyn.Resource(envtest.CVIResource)
	ctx, cancel := context.WithTimeout(context.Background(), pbReadyTimeout)
	defer cancel()
	list, err := res.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 0 {
		t.Fatalf("%d ClusterVirtualImages left from before", len(list.Items))
	}
	images := map[string]*pbImage{}
	r.images = nil
	for i := range files {
		img := &pbImage{name: pbName(i)}
		images[img.name] = img
		r.images = append(r.images, img)
	}
	var mu sync.Mutex // guards images' fields
	readyCount := 0
	allReady := make(chan struct{})
	failed := make(chan string, 1)
	watchErr := make(chan error, 1)
	w, err := res.Watch(ctx, metav1.ListOptions{ResourceVersion: list.GetResourceVersion()})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		rv := list.GetResourceVersion()
		for {
			for ev := range w.ResultChan() {
				now := time.Now()
				obj, ok := ev.Object.(*unstructured.Unstructured)
				if !ok {
					continue // a watch error: restart from rv
				}
				rv = obj.GetResourceVersion()
				mu.Lock()
				img := images[obj.GetName()]
				if img == nil || ev.Type == watch.Deleted {
					mu.Unlock()
					continue
				}
				if ev.Type == watch.Modified {
					img.modified++
					r.writes = append(r.writes, now)
				}
				phase, _, _ := unstructured.NestedString(obj.Object, "status", "phase")
				switch phase {
				case "Pending":
					img.pending = true
				case "Provisioning":
					if img.started.IsZero() {
						img.started = now
					}
				case "Ready":
					if img.ready.IsZero() {
						img.ready = now
						if img.started.IsZero() {
							img.started = now
						}
						img.duration, _, _ = unstructured.NestedString(obj.Object, "status", "importDuration")
						img.unpacked, _, _ = unstructured.NestedString(obj.Object, "status", "size", "unpackedBytes")
						img.format, _, _ = unstructured.NestedString(obj.Object, "status", "format")
						readyCount++
						if readyCount == len(images) {
							close(allReady)
						}
					}
				case "Failed":
					img.failedMsg = fmt.Sprint(obj.Object["status"])
					select {
					case failed <- img.name + ": " + img.failedMsg:
					default:
					}
				}
				mu.Unlock()
			}
			if ctx.Err() != nil {
				return
			}
			w, err = res.Watch(ctx, metav1.ListOptions{ResourceVersion: rv})
			if err != nil {
				watchErr <- err
				return
			}
		}
	}()

	t0 := time.Now()
	var wg sync.WaitGroup
	createErr := make(chan error, len(files))
	for i, f := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			obj := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": envtest.Group + "/" + envtest.Version,
				"kind":       "ClusterVirtualImage",
				"metadata":   map[string]any{"name": pbName(i)},
				"spec": map[string]any{
					"dataSource": map[string]any{"type": "HTTP", "http": map[string]any{"url": srcBase + f}},
				},
			}}
			if _, err := res.Create(ctx, obj, metav1.CreateOptions{}); err != nil {
				createErr <- fmt.Errorf("create %s: %w", pbName(i), err)
				return
			}
			mu.Lock()
			images[pbName(i)].created = time.Now()
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(createErr)
	for err := range createErr {
		t.Fatal(err)
	}
	t.Logf("created %d ClusterVirtualImages in %s", len(files), time.Since(t0).Round(time.Millisecond))
	select {
	case <-allReady:
	case msg := <-failed:
		t.Fatalf("image failed: %s\nserver:\n%s", msg, srv.stderr)
	case err := <-watchErr:
		t.Fatalf("watch: %v", err)
	case <-ctx.Done():
		mu.Lock()
		n := readyCount
		mu.Unlock()
		t.Fatalf("only %d of %d Ready within %s\nserver:\n%s", n, len(images), pbReadyTimeout, srv.stderr)
	}
	mu.Lock()
	var last time.Time
	first := r.images[0].started
	for _, img := range r.images {
		if img.ready.After(last) {
			last = img.ready
		}
		if img.started.Before(first) {
			first = img.started
		}
		if img.format != "raw" || img.unpacked != strconv.FormatInt(p.size, 10) {
			t.Errorf("%s: Ready with format %q, unpackedBytes %q; want raw, %d", img.name, img.format, img.unpacked, p.size)
		}
	}
	mu.Unlock()
	r.provWall = last.Sub(t0)
	r.firstStarted = first.Sub(t0)
	r.provCPU = (ppCpuTime(t, srv.pid()) - cpu0).Seconds()
	// Events are sent asynchronously: the idle window catches the last
	// ones, and would show a loop that goes on after Ready.
	m1 := pbMetrics(t, srv.metricsURL())
	time.Sleep(pbIdleWindow)
	m2 := pbMetrics(t, srv.metricsURL())
	r.idleReqs = pbSum(m2, "") - pbSum(m1, "")
	// Counted from the process start: the first lists and watches are
	// part of what the images cost.
	r.reqs, r.reqsByCode = map[string]float64{}, map[string]float64{}
	for k, v := range m2 {
		r.reqs[k.method] += v
		r.reqsByCode[k.code] += v
	}
	r.startupReqs = pbSum(m0, "")
	hwm, err := ppVmHWM(srv.pid())
	if err != nil {
		t.Fatal(err)
	}
	r.provRSS = hwm
}

// pbDeleteAll removes the ClusterVirtualImages (nothing holds them: the
// controller has no finalizer) and waits until they are gone.
func pbDeleteAll(t *testing.T, dyn dynamic.Interface) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res := dyn.Resource(envtest.CVIResource)
	if err := res.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Fatalf("deleting the ClusterVirtualImages: %v", err)
	}
	for ctx.Err() == nil {
		l, err := res.List(ctx, metav1.ListOptions{})
		if err == nil && len(l.Items) == 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("the ClusterVirtualImages are not gone within a minute")
}

// ---- the server ----

type pbServer struct {
	cmd       *exec.Cmd
	base      string // http://127.0.0.1:PORT
	debugAddr string
	root      string
	dir       string
	stderr    *ppLockedBuffer
	done      chan struct{}
}

func (s *pbServer) pid() int           { return s.cmd.Process.Pid }
func (s *pbServer) metricsURL() string { return "http://" + s.debugAddr + "/metrics" }

// pbStartServer starts `dvcr serve` on a fresh storage root under dir, with
// the debug endpoint (Prometheus) on; with kubeconfig, provisioning on with
// concurrency imports at once.
func pbStartServer(t *testing.T, dvcrBin, dir, kubeconfig string, concurrency int) *pbServer {
	t.Helper()
	root := filepath.Join(dir, "data")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	var lastErr string
	for attempt := 0; attempt < 3; attempt++ {
		port, debugPort := ppFreePort(t), ppFreePort(t)
		cfgText := "version: 0.1\n" +
			"log: {level: error, accesslog: {disabled: true}}\n" +
			"storage: {filesystem: {rootdirectory: " + root + "}, cache: {blobdescriptor: inmemory}, delete: {enabled: true}}\n" +
			"http: {addr: 127.0.0.1:" + strconv.Itoa(port) + ", debug: {addr: 127.0.0.1:" + strconv.Itoa(debugPort) + ", prometheus: {enabled: true}}}\n" +
			"dvcr:\n  adminSocket: " + filepath.Join(dir, "admin.sock") + "\n"
		if kubeconfig != "" {
			cfgText += fmt.Sprintf("  provisioning: {enabled: true, concurrency: %d}\n", concurrency)
		}
		cfg := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(cfg, []byte(cfgText), 0o644); err != nil {
			t.Fatal(err)
		}
		s := &pbServer{base: "http://127.0.0.1:" + strconv.Itoa(port), debugAddr: "127.0.0.1:" + strconv.Itoa(debugPort),
			root: root, dir: dir, stderr: &ppLockedBuffer{}, done: make(chan struct{})}
		s.cmd = exec.Command(dvcrBin, "serve", "--config", cfg)
		s.cmd.Env = os.Environ()
		if kubeconfig != "" {
			s.cmd.Env = append(s.cmd.Env, "KUBECONFIG="+kubeconfig)
		}
		s.cmd.Stdout, s.cmd.Stderr = s.stderr, s.stderr
		if err := s.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = s.cmd.Wait(); close(s.done) }()
		rs := &ppRegServer{base: s.base, done: s.done}
		if err := rs.waitReady(); err != nil {
			lastErr = fmt.Sprintf("%v\n%s", err, s.stderr)
			s.kill()
			continue
		}
		t.Cleanup(s.kill)
		return s
	}
	t.Fatalf("dvcr serve did not start: %s", lastErr)
	return nil
}

func (s *pbServer) kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

// cleanup stops the server and removes its storage root.
func (s *pbServer) cleanup(t *testing.T) {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Logf("dvcr serve did not stop on SIGTERM; killing")
		s.kill()
	}
	if err := os.RemoveAll(s.root); err != nil {
		t.Fatal(err)
	}
}

func pbVmRSS(t *testing.T, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// ---- metrics ----

type pbReqKey struct{ code, method string }

var pbLabel = regexp.MustCompile(`(\w+)="([^"]*)"`)

// pbMetrics reads rest_client_requests_total by code and method (summed
// over hosts).
func pbMetrics(t *testing.T, url string) map[pbReqKey]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s", url, resp.Status)
	}
	out := map[pbReqKey]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, "rest_client_requests_total{")
		if !ok {
			continue
		}
		i := strings.LastIndexByte(rest, '}')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest[i+1:]), 64)
		if err != nil {
			t.Fatalf("metrics: %q", line)
		}
		var k pbReqKey
		for _, m := range pbLabel.FindAllStringSubmatch(rest[:i], -1) {
			switch m[1] {
			case "code":
				k.code = m[2]
			case "method":
				k.method = m[2]
			}
		}
		out[k] += v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// pbSum adds the counters of method ("" for all).
func pbSum(m map[pbReqKey]float64, method string) float64 {
	var n float64
	for k, v := range m {
		if method == "" || k.method == method {
			n += v
		}
	}
	return n
}

// pbWaitSettled waits until the controller has made requests and their
// count has not moved for a second (at most 30 s).
func pbWaitSettled(t *testing.T, s *pbServer) map[pbReqKey]float64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var prev float64 = -1
	stable := 0
	for time.Now().Before(deadline) {
		m := pbMetrics(t, s.metricsURL())
		n := pbSum(m, "")
		if n > 0 && n == prev {
			stable++
			if stable >= 4 {
				return m
			}
		} else {
			stable = 0
		}
		prev = n
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("the controller's API requests did not settle within 30 s (rest_client_requests_total %v)\nserver:\n%s", prev, s.stderr)
	return nil
}

func pbMethods(m map[string]float64) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var s []string
	for _, k := range keys {
		s = append(s, fmt.Sprintf("%s %.0f", k, m[k]))
	}
	return strings.Join(s, ", ")
}

// ---- targets and report ----

func pbMedianDur(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func pbQuantile(ds []time.Duration, q float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func pbTargets(p pbParams, runs []*pbRun) []ibTarget {
	var over []time.Duration
	var reqs []float64
	for _, r := range runs {
		over = append(over, r.overhead(p))
		reqs = append(reqs, r.requests()/float64(p.images))
	}
	med := pbMedianDur(over)
	worst := slices.Max(reqs)
	var list []string
	for _, o := range over {
		list = append(list, fmt.Sprintf("%.2f", o.Seconds()))
	}
	var rl []string
	for _, x := range reqs {
		rl = append(rl, fmt.Sprintf("%.1f", x))
	}
	return []ibTarget{
		{
			target: fmt.Sprintf("overhead per image above the import itself < %s (median of the runs)", pbOverheadTarget),
			result: fmt.Sprintf("%.2f s (runs: %s s)", med.Seconds(), strings.Join(list, ", ")),
			status: verdict(med < pbOverheadTarget),
		},
		{
			target: fmt.Sprintf("controller API requests per image ≤ %.0f (worst run, watches and lists included)", pbRequestsTarget),
			result: fmt.Sprintf("%.1f (runs: %s)", worst, strings.Join(rl, ", ")),
			status: verdict(worst <= pbRequestsTarget),
		},
	}
}

func provisionMarkdown(p pbParams, runs []*pbRun, total time.Duration) string {
	secs := func(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
	var b strings.Builder
	b.WriteString("# Benchmark: provisioning ClusterVirtualImages from HTTP\n\n")
	b.WriteString("Generated by `go test -tags bench ./test/bench/ -run TestBenchProvision` (`test/bench/provision_test.go`).\n\n")
	writeMachine(&b)
	fmt.Fprintf(&b, "- CPU: %s\n", ppCpuModel())
	fmt.Fprintf(&b, "- Go: %s, %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(&b, "- Images: %d distinct raw files of %s (%d bytes) in 4 MiB extents: 1/4 pseudo-random (seeded per image), 1/4 a text pattern naming the image, 1/2 zeros; served by `http.FileServer` in the test process on 127.0.0.1 (no rate limit, sendfile, Content-Length), files in the page cache\n", p.images, ibMib(p.size), p.size)
	fmt.Fprintf(&b, "- Cluster: envtest (`bin/k8s` kube-apiserver and etcd) with the chart's CRDs; the controller is `bin/dvcr serve` with `dvcr.provisioning: {enabled: true, concurrency: %d}` and KUBECONFIG, filesystem storage on the test's temporary directory, `cache: {blobdescriptor: inmemory}`, log level error, debug endpoint with Prometheus on\n", p.concurrency)
	fmt.Fprintf(&b, "- Provisioning: the %d ClusterVirtualImages (`spec.dataSource: {type: HTTP, http: {url}}`) are created at once (one goroutine each, unthrottled client); a watch in the test records when each is first seen in phase Provisioning (its import started: the controller writes that phase first) and Ready; *time to all Ready* is the first Create to the last Ready\n", p.images)
	fmt.Fprintf(&b, "- Import-only reference, same run: the same %d files imported with `bin/dvcr import --registry http://127.0.0.1:PORT -o json URL cvi/NAME`, %d at once (the controller's slots), into a fresh `bin/dvcr serve` of the same config without provisioning; wall = first start to last exit\n", p.images, p.concurrency)
	fmt.Fprintf(&b, "- **Overhead per image** = (time to all Ready − import-only wall) × %d slots / %d images: the slot time each image costs above the import itself (status writes, queueing, the hand-over of a freed slot to the next image)\n", p.concurrency, p.images)
	fmt.Fprintf(&b, "- API requests: the controller's `rest_client_requests_total` on the debug endpoint, from the process start (so the first lists and watches count) to %s after the last Ready (the asynchronous events, and a loop going on after Ready, land there); the images are created once the count has stood still for 1 s (the controller has started)\n", pbIdleWindow)
	fmt.Fprintf(&b, "- %d run(s), the order of the two alternated; each with fresh servers on an empty storage root, `sync` and a wait until the disk is idle before each; the images are deleted between runs\n", p.runs)
	fmt.Fprintf(&b, "- Whole benchmark: %s\n\n", total.Round(time.Second))

	b.WriteString("| Run | time to all Ready | import-only wall | overhead per image | first import started after | API requests (per image) | by method | after Ready (idle window) | server CPU s: provisioning / import-only + imports |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for i, r := range runs {
		var cliCPU float64
		for _, imp := range r.imports {
			cliCPU += imp.cpu
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %.0f (%.1f) | %s | %.0f | %.1f / %.1f + %.1f |\n", i+1, secs(r.provWall), secs(r.impWall), secs(r.overhead(p)),
			secs(r.firstStarted), r.requests(), r.requests()/float64(p.images), pbMethods(r.reqs), r.idleReqs, r.provCPU, r.impServerCPU, cliCPU)
	}

	// Per image, all runs together.
	var createReady, inSlot, queued, cliWall []time.Duration
	var cliSecs []float64
	var mods []float64
	var pending, n int
	var idleSlot []time.Duration
	durations := map[string]int{}
	for _, r := range runs {
		var slotSum time.Duration
		for _, img := range r.images {
			createReady = append(createReady, img.ready.Sub(img.created))
			inSlot = append(inSlot, img.ready.Sub(img.started))
			queued = append(queued, img.started.Sub(img.created))
			slotSum += img.ready.Sub(img.started)
			mods = append(mods, float64(img.modified))
			if img.pending {
				pending++
			}
			durations[img.duration]++
			n++
		}
		idleSlot = append(idleSlot, (time.Duration(p.concurrency)*r.provWall-slotSum)/time.Duration(p.images))
		for _, imp := range r.imports {
			cliWall = append(cliWall, imp.wall)
			cliSecs = append(cliSecs, imp.seconds)
		}
	}
	b.WriteString("\nPer image, all runs together (median / 90th percentile / max):\n\n")
	b.WriteString("| Measure | median | p90 | max |\n|---|---|---|---|\n")
	row := func(name string, ds []time.Duration) {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", name, secs(pbMedianDur(ds)), secs(pbQuantile(ds, 0.9)), secs(slices.Max(ds)))
	}
	row("create → Ready", createReady)
	row("create → import started (waiting for a slot)", queued)
	row("import started → Ready (in a slot: the import, its status writes)", inSlot)
	row(fmt.Sprintf("`dvcr import`, process start to exit, %d at once", p.concurrency), cliWall)
	var cliSecDur []time.Duration
	for _, s := range cliSecs {
		cliSecDur = append(cliSecDur, time.Duration(s*float64(time.Second)))
	}
	row("`dvcr import`, the importer's own `seconds`", cliSecDur)
	row("idle slot time per image: (slots × time to all Ready − Σ in-slot times) / images, per run", idleSlot)
	var keys []string
	for k := range durations {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var ds []string
	for _, k := range keys {
		ds = append(ds, fmt.Sprintf("%s ×%d", k, durations[k]))
	}
	fmt.Fprintf(&b, "\nStatus writes seen by the watch (MODIFIED events) per image: median %.0f, max %.0f; %d of %d images were first written Pending (all slots busy). `status.importDuration` (rounded to seconds by the controller): %s.\n",
		ppMedian(mods), slices.Max(mods), pending, n, strings.Join(ds, ", "))

	// When the imports of the first run started: the queued ones start
	// when the controller looks at them again, not when a slot frees.
	first := runs[0]
	t0 := first.images[0].created
	for _, img := range first.images {
		if img.created.Before(t0) {
			t0 = img.created
		}
	}
	var starts []float64
	for _, img := range first.images {
		starts = append(starts, img.started.Sub(t0).Seconds())
	}
	slices.Sort(starts)
	var ss []string
	for _, x := range starts {
		ss = append(ss, fmt.Sprintf("%.1f", x))
	}
	// The rate of status writes: flat at the client's limit when the
	// controller's writes are throttled.
	var rates []string
	for _, r := range runs {
		w := slices.Clone(r.writes)
		slices.SortFunc(w, func(a, b time.Time) int { return a.Compare(b) })
		peak, j := 0, 0
		for i := range w {
			for w[i].Sub(w[j]) >= time.Second {
				j++
			}
			peak = max(peak, i-j+1)
		}
		// the longest stretch of 5 s with its writes
		peak5, j := 0, 0
		for i := range w {
			for w[i].Sub(w[j]) >= 5*time.Second {
				j++
			}
			peak5 = max(peak5, i-j+1)
		}
		rates = append(rates, fmt.Sprintf("%d writes in %.1f s = %.1f/s, at most %d in any 1 s, %.1f/s over the busiest 5 s",
			len(w), r.provWall.Seconds(), float64(len(w))/r.provWall.Seconds(), peak, float64(peak5)/5))
	}
	fmt.Fprintf(&b, "\nStatus writes over time (watch events), per run: %s.\n", strings.Join(rates, "; "))
	fmt.Fprintf(&b, "\nImport starts in run 1, seconds after the first Create returned: %s.\n", strings.Join(ss, " "))

	b.WriteString("\nAPI requests by method and code, per run (the controller's client, process start to the end of the idle window):\n\n")
	b.WriteString("| Run | by method | by code | of which before the first image (first lists and watches) |\n|---|---|---|---|\n")
	for i, r := range runs {
		fmt.Fprintf(&b, "| %d | %s | %s | %.0f |\n", i+1, pbMethods(r.reqs), pbMethods(r.reqsByCode), r.startupReqs)
	}

	b.WriteString("\nRSS of `dvcr serve` (VmHWM at the end of the run; the controller also does the imports in process, the import-only server only receives them):\n\n")
	b.WriteString("| Run | provisioning: controller started, no image yet (VmRSS) | provisioning: peak (VmHWM) | import-only server: peak (VmHWM) |\n|---|---|---|---|\n")
	for i, r := range runs {
		fmt.Fprintf(&b, "| %d | %s | %s | %s |\n", i+1, ibMib(r.provIdleRSS), ibMib(r.provRSS), ibMib(r.impServerRSS))
	}

	b.WriteString("\n## Targets\n\n")
	b.WriteString("| Target | Result | Status |\n|---|---|---|\n")
	for _, tg := range pbTargets(p, runs) {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", tg.target, tg.result, tg.status)
	}
	var walls []time.Duration
	for _, r := range runs {
		walls = append(walls, r.provWall)
	}
	fmt.Fprintf(&b, "| time to all %d Ready (information) | %s (median of the runs) | — |\n", p.images, secs(pbMedianDur(walls)))
	var hwm int64
	for _, r := range runs {
		hwm = max(hwm, r.provRSS)
	}
	fmt.Fprintf(&b, "| controller's peak RSS (information) | %s (max of the runs) | — |\n", ibMib(hwm))
	return b.String()
}

// ---- data ----

// pbMakeImages writes n distinct raw images of size bytes into dir (kept
// when already there with the right size) and returns their names.
func pbMakeImages(t *testing.T, dir string, n int, size int64) []string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var names []string
	buf := make([]byte, pbExtent)
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("img-%03d.raw", i)
		names = append(names, name)
		path := filepath.Join(dir, name)
		if st, err := os.Stat(path); err == nil && st.Size() == size {
			continue
		}
		if err := pbWriteImage(path, i, size, buf); err != nil {
			t.Fatal(err)
		}
	}
	return names
}

func pbWriteImage(path string, idx int, size int64, buf []byte) error {
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return err
	}
	var seed [32]byte
	copy(seed[:], "dvcr-provision-bench")
	binary.LittleEndian.PutUint64(seed[24:], uint64(idx))
	rng := rand.NewChaCha8(seed)
	for off := int64(0); off < size; off += pbExtent {
		switch e := off / pbExtent; e % 4 {
		case 0:
			_, _ = rng.Read(buf)
		case 2:
			p := buf[:0]
			for line := 0; len(p) < len(buf); line++ {
				s := fmt.Appendf(nil, "image %03d extent %04d line %08d: kernel: virtio-blk sector %d ok\n", idx, e, line, off/512+int64(line))
				p = append(p, s[:min(len(s), len(buf)-len(p))]...)
			}
		default:
			clear(buf)
		}
		if _, err := f.Write(buf[:min(int64(pbExtent), size-off)]); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}
