//go:build bench

// Push and pull on S3: DVCR (dvcr serve, s3-aws driver, replicas in cluster
// mode) against upstream distribution v3.1.2 on the same versitygw, each
// with a bucket of its own; then 30 clients pulling one blob from one
// replica and from three. Writes docs/bench-s3.md.

package bench

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dvcr/dvcr/test/dvcrtest"
	"github.com/dvcr/dvcr/test/envtest"
)

const (
	s3Runs        = 5
	s3Clients     = 30
	s3Replicas    = 3
	s3RatioTarget = 1.0
)

// s3Bench is one run's servers and the report it fills.
type s3Bench struct {
	blob     *ppBigBlob
	s3       *dvcrtest.S3
	replicas []*dvcrtest.Server
	upstream string // base URL
	upPID    int
	// kubeconfig of the API server the replicas coordinate through.
	kubeconfig string
	client     *http.Client
}

func TestBenchS3PushPull(t *testing.T) {
	root := dvcrtest.RepoRoot(t)
	dir := t.TempDir()
	b := &s3Bench{blob: ppMakeBigBlob(t, filepath.Join(dir, "blob.bin")), s3: dvcrtest.StartS3(t), client: ppNewClient()}
	// S3BENCH_SINGLE=1: one dvcr serve without cluster mode or API server,
	// to tell the registry from its replicas' surroundings; the committed
	// report is left alone.
	single := os.Getenv("S3BENCH_SINGLE") != ""
	b.startReplicas(t, single)
	b.startUpstream(t, root, dir)

	var push, pull [2][]float64 // MB/s of DVCR, upstream
	for run := 0; run < s3Runs; run++ {
		// Alternating which goes first: the first push of a run meets a
		// colder S3 server.
		order := []int{0, 1}
		if run%2 == 1 {
			order = []int{1, 0}
		}
		for _, i := range order {
			base := []string{b.replicas[0].URL(), b.upstream}[i]
			d, err := ppPushMonolithic(b.client, base, fmt.Sprintf("cvi/s3-push-%d", run), b.blob, -1)
			if err != nil {
				t.Fatalf("push to %s: %v", base, err)
			}
			push[i] = append(push[i], ppMb(ppBigSize, d))
			d, err = ppPull(b.client, base, fmt.Sprintf("cvi/s3-push-%d", run), b.blob.digest, ppBigSize)
			if err != nil {
				t.Fatalf("pull from %s: %v", base, err)
			}
			pull[i] = append(pull[i], ppMb(ppBigSize, d))
		}
		t.Logf("run %d: push DVCR %.0f, upstream %.0f MB/s; pull DVCR %.0f, upstream %.0f MB/s",
			run+1, push[0][run], push[1][run], pull[0][run], pull[1][run])
	}
	one := b.parallelPull(t, b.replicas[:1])
	three := one
	if !single {
		b.addReplicas(t, s3Replicas-1)
		three = b.parallelPull(t, b.replicas)
	}
	t.Logf("%d clients: one replica %s; three replicas %s", s3Clients, one, three)

	pushRatio, pullRatio := ppMedian(push[0])/ppMedian(push[1]), ppMedian(pull[0])/ppMedian(pull[1])
	text := s3Markdown(push, pull, pushRatio, pullRatio, one, three)
	fmt.Print("\n" + text)
	writeReport(t, filepath.Join(root, "docs", "bench-s3.md"), text, single, "S3BENCH_SINGLE")
	if pushRatio < s3RatioTarget || pullRatio < s3RatioTarget {
		t.Errorf("S3: push %.2fx, pull %.2fx of upstream; target %.1fx", pushRatio, pullRatio, s3RatioTarget)
	}
}

// startReplicas starts the first dvcr serve in cluster mode on the bucket,
// with a real API server (as the chart runs it on S3, whatever the number of
// replicas); with single, one plain dvcr serve without cluster mode.
func (b *s3Bench) startReplicas(t *testing.T, single bool) {
	t.Helper()
	if single {
		b.replicas = []*dvcrtest.Server{dvcrtest.StartServer(t, dvcrtest.ServerOptions{Storage: b.s3.StorageYAML(), HTTPSecret: "bench"})}
		return
	}
	cluster := envtest.Start(t)
	b.kubeconfig = cluster.Kubeconfig(t)
	b.addReplicas(t, 1)
}

// addReplicas starts n more replicas and waits until each takes writes.
func (b *s3Bench) addReplicas(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{
			Storage: b.s3.StorageYAML(), HTTPSecret: "bench",
			DVCR: "  cluster:\n    enabled: true\n    namespace: default\n",
			Env:  []string{"KUBECONFIG=" + b.kubeconfig, fmt.Sprintf("POD_NAME=bench-%d", len(b.replicas)+1)},
		})
		b.replicas = append(b.replicas, srv)
	}
	deadline := time.Now().Add(time.Minute)
	for _, srv := range b.replicas {
		for {
			resp, err := http.Post(srv.URL()+"/v2/cvi/probe/blobs/uploads/", "", nil)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusAccepted {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica %s does not take writes", srv.Addr)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// startUpstream runs bin/registry on a bucket of its own in the same
// versitygw.
func (b *s3Bench) startUpstream(t *testing.T, root, dir string) {
	t.Helper()
	if err := os.Mkdir(filepath.Join(b.s3.Root, "upstream"), 0o755); err != nil {
		t.Fatal(err)
	}
	port := ppFreePort(t)
	storage := strings.Replace(b.s3.StorageYAML(), "bucket: "+b.s3.Bucket, "bucket: upstream", 1)
	cfg := filepath.Join(dir, "upstream.yml")
	text := fmt.Sprintf("version: 0.1\nlog: {level: error, accesslog: {disabled: true}}\nstorage:\n%s  cache:\n    blobdescriptor: inmemory\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:%d\n  secret: bench\n", storage, port)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gcUpstreamRegistry(t, root), "serve", cfg)
	var out ppLockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	b.upstream, b.upPID = fmt.Sprintf("http://127.0.0.1:%d", port), cmd.Process.Pid
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(b.upstream + "/v2/"); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("upstream registry on S3 did not start:\n%s", out.String())
}

// s3Parallel is one parallel pull measurement.
type s3Parallel struct {
	replicas int
	mbps     float64
	cpuPerGi float64 // CPU seconds of the registries and the S3 server per GiB pulled
}

func (p s3Parallel) String() string {
	return fmt.Sprintf("%.0f MB/s, %.2f CPU-s/GiB", p.mbps, p.cpuPerGi)
}

// parallelPull has s3Clients clients pull one 64 MiB blob, spread over
// replicas round robin.
func (b *s3Bench) parallelPull(t *testing.T, replicas []*dvcrtest.Server) s3Parallel {
	t.Helper()
	const repo = "cvi/s3-parallel"
	if _, err := ppPushMonolithic(b.client, replicas[0].URL(), repo, b.blob, 0); err != nil {
		t.Fatal(err)
	}
	_, size := b.blob.section(0)
	pids := []int{b.s3.PID()}
	for _, r := range replicas {
		pids = append(pids, r.PID())
	}
	cpu := func() (sum time.Duration) {
		for _, pid := range pids {
			sum += ppCpuTime(t, pid)
		}
		return sum
	}
	before := cpu()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, s3Clients)
	for i := 0; i < s3Clients; i++ {
		wg.Add(1)
		go func(base string) {
			defer wg.Done()
			if _, err := ppPull(b.client, base, repo, b.blob.parDigest[0], size); err != nil {
				errs <- err
			}
		}(replicas[i%len(replicas)].URL())
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		t.Fatalf("parallel pull: %v", err)
	}
	total := float64(size) * s3Clients
	return s3Parallel{replicas: len(replicas), mbps: total / 1e6 / elapsed.Seconds(), cpuPerGi: (cpu() - before).Seconds() / (total / (1 << 30))}
}

func s3Markdown(push, pull [2][]float64, pushRatio, pullRatio float64, one, three s3Parallel) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Push and pull on S3: DVCR against upstream\n\n")
	fmt.Fprintf(&b, "Generated by `make bench` (TestBenchS3PushPull) on %s, %s. Both registries use distribution's "+
		"s3-aws driver on one versitygw v1.8.0 (posix backend) on loopback, a bucket each; DVCR runs in cluster mode "+
		"(Leases in a real API server), as the chart runs it on S3: one replica for push and pull, %d for the parallel pulls. 1 GiB blob, monolithic push (POST + PUT), pull with sha256 "+
		"verified; %d runs, which of the two goes first alternating; medians.\n\n", time.Now().UTC().Format("2006-01-02"), ppCpuModel(), s3Replicas, s3Runs)
	verdict := func(r float64) string {
		if r >= s3RatioTarget {
			return "met"
		}
		return "missed"
	}
	fmt.Fprintf(&b, "| | DVCR MB/s | upstream MB/s | ratio (target ≥ %.1f) |\n|---|---|---|---|\n", s3RatioTarget)
	fmt.Fprintf(&b, "| push 1 GiB | %.0f | %.0f | %.2f (%s) |\n", ppMedian(push[0]), ppMedian(push[1]), pushRatio, verdict(pushRatio))
	fmt.Fprintf(&b, "| pull 1 GiB | %.0f | %.0f | %.2f (%s) |\n\n", ppMedian(pull[0]), ppMedian(pull[1]), pullRatio, verdict(pullRatio))
	fmt.Fprintf(&b, "%d clients pulling one 64 MiB blob (CPU: the replicas and the S3 server, per GiB pulled):\n\n", s3Clients)
	fmt.Fprintf(&b, "| replicas | aggregate MB/s | CPU-s per GiB |\n|---|---|---|\n")
	for _, p := range []s3Parallel{one, three} {
		fmt.Fprintf(&b, "| %d | %.0f | %.2f |\n", p.replicas, p.mbps, p.cpuPerGi)
	}
	fmt.Fprintf(&b, "\nTwo cores serve the S3 server, every replica and the clients here: three replicas cannot "+
		"pull faster than one on this machine, and the figure that carries over to a cluster is the CPU per GiB.\n")
	return b.String()
}
