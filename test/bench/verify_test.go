//go:build bench

// `dvcr-cleaner verify` (reading the storage directly, --config) over a
// store of ~1.4 GiB of blobs against `sha256sum` of the same blob files,
// same run, both warm (an untimed pass of each first: the page cache
// cannot be dropped here); `openssl dgst -sha256` alongside, for the
// machine's sha256 speed; the peak RSS of the verify process. Writes
// docs/bench-verify.md.
package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dvcr/dvcr/test/dvcrtest"
)

const (
	vbDefaultRuns  = 5
	vbSmallImages  = 24       // beside the 1 GiB image
	vbSmallSize    = 16 << 20 // each
	vbTarget       = 0.9      // dvcr-cleaner verify / sha256sum
	vbBlobsRootRel = "docker/registry/v2/blobs"
)

type vbSystem struct {
	key, title string
	dvcr       bool
	run        func(t *testing.T) vbMeasure
}

type vbMeasure struct {
	wall  time.Duration
	rss   int64
	cpu   float64
	peaks rssPeaks
}

type vbResult struct {
	sys  *vbSystem
	runs []vbMeasure
}

func (r *vbResult) mbps(bytes int64) []float64 {
	var xs []float64
	for _, m := range r.runs {
		xs = append(xs, float64(bytes)/1e6/m.wall.Seconds())
	}
	return xs
}

func (r *vbResult) median(f func(m vbMeasure) float64) float64 {
	var xs []float64
	for _, m := range r.runs {
		xs = append(xs, f(m))
	}
	return ppMedian(xs)
}

func (r *vbResult) maxOf(f func(m vbMeasure) int64) int64 {
	var hi int64 = -1
	for _, m := range r.runs {
		hi = max(hi, f(m))
	}
	return hi
}

// vbVerifyResult is what `dvcr-cleaner verify -o json` prints, in part.
type vbVerifyResult struct {
	Result       string `json:"result"`
	BlobsChecked int    `json:"blobsChecked"`
	BytesRead    int64  `json:"bytesRead"`
	Images       []struct {
		Status string `json:"status"`
	} `json:"images"`
}

// TestBenchVerify: VERIFYBENCH_RUNS (default 5; fewer than 3 leave
// docs/bench-verify.md as it is). The 1 GiB image is the export
// benchmark's, kept in tmp/bench-export/ (EXPORTBENCH_DATA=DIR: there).
func TestBenchVerify(t *testing.T) {
	began := time.Now()
	root := dvcrtest.RepoRoot(t)
	dvcrBin := filepath.Join(root, "bin", "dvcr")
	cleanerBin := filepath.Join(root, "bin", "dvcr-cleaner")
	for _, bin := range []string{dvcrBin, cleanerBin, "/usr/bin/time"} {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("%s: %v (run `make build`; /usr/bin/time is Debian's package time)", bin, err)
		}
	}
	if _, err := exec.LookPath("sha256sum"); err != nil {
		t.Fatal(err)
	}
	_, errSSL := exec.LookPath("openssl")
	runs := vbDefaultRuns
	if v := os.Getenv("VERIFYBENCH_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("VERIFYBENCH_RUNS=%q: want a whole number of runs, 1 or more", v)
		}
		runs = n
	}
	partial := runs < 3

	data := os.Getenv("EXPORTBENCH_DATA")
	if data == "" {
		data = filepath.Join(root, "tmp", "bench-export", "v1")
	}
	raw, _ := ebRawImage(t, data)
	dir := t.TempDir()
	t.Logf("work directory %s", dir)

	// The store: the 1 GiB image and vbSmallImages of 16 MiB, each
	// imported with dvcr import (a layer, a config and a manifest each).
	start := time.Now()
	srvDir := filepath.Join(dir, "srv")
	dvcrFlavor := &ppFlavor{name: "DVCR", bin: dvcrBin, dvcr: true,
		args: func(cfg string) []string { return []string{"serve", "--config", cfg} }}
	srv := ppStartRegistry(t, dvcrFlavor, filepath.Join(srvDir, "dvcr"))
	cfg := filepath.Join(srvDir, "dvcr", "config.yml")
	sources := []string{raw}
	buf := make([]byte, vbSmallSize)
	for i := range vbSmallImages {
		var seed [32]byte
		copy(seed[:], fmt.Sprintf("dvcr-verify-%d", i))
		_, _ = rand.NewChaCha8(seed).Read(buf)
		p := filepath.Join(dir, fmt.Sprintf("small-%02d.raw", i))
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			t.Fatal(err)
		}
		sources = append(sources, p)
	}
	for i, src := range sources {
		var stderr bytes.Buffer
		cmd := exec.Command(dvcrBin, "import", "--registry", srv.base, "-o", "json", src, fmt.Sprintf("cvi/bench-verify-%02d", i))
		cmd.Stdout, cmd.Stderr = io.Discard, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("dvcr import %s: %v\n%s\nserver: %s", src, err, stderr.String(), srv.stderr)
		}
		if i > 0 {
			_ = os.Remove(src)
		}
	}
	srv.stop(t) // verify reads the storage itself
	files, total := vbBlobFiles(t, srv.root)
	t.Logf("store: %d blobs, %d bytes, in %s", len(files), total, time.Since(start).Round(time.Millisecond))

	timed := func(dvcr bool, check func(out []byte), name string, args ...string) func(t *testing.T) vbMeasure {
		return func(t *testing.T) vbMeasure {
			var m vbMeasure
			var stdout, stderr bytes.Buffer
			var watch func(int) func()
			if dvcr {
				watch = sampleRSS(&m.peaks)
			}
			tm, err := runTimed(t, &stdout, &stderr, watch, name, args...)
			if err != nil {
				t.Fatalf("%s: %v\n%s", name, err, stderr.String())
			}
			check(stdout.Bytes())
			m.wall, m.rss, m.cpu = tm.wall, tm.rss, tm.cpu
			return m
		}
	}
	sums := func(out []byte) { vbCheckSums(t, out, files) }
	systems := []*vbSystem{
		{key: "sha256sum", title: "`sha256sum` of the blob files", run: timed(false, sums, "sha256sum", files...)},
		{key: "verify", title: "`dvcr-cleaner --config CFG verify -o json`", dvcr: true,
			run: timed(true, func(out []byte) {
				var res vbVerifyResult
				if err := json.Unmarshal(out, &res); err != nil || res.Result != "ok" || res.BlobsChecked != len(files) || res.BytesRead != total || len(res.Images) != len(sources) {
					t.Fatalf("dvcr-cleaner verify: %v; want result ok, %d blobs, %d bytes, %d images:\n%s", err, len(files), total, len(sources), out)
				}
			}, cleanerBin, "--config", cfg, "verify", "-o", "json")},
	}
	if errSSL == nil {
		systems = append(systems, &vbSystem{key: "openssl", title: "`openssl dgst -sha256 -r` of the blob files (for comparison)",
			run: timed(false, sums, "openssl", append([]string{"dgst", "-sha256", "-r"}, files...)...)})
	}
	// Warm: one untimed pass of each, so that every timed pass reads the
	// page cache.
	for _, s := range systems {
		s.run(t)
	}
	results := make([]*vbResult, len(systems))
	by := map[string]*vbResult{}
	for i, s := range systems {
		results[i] = &vbResult{sys: s}
		by[s.key] = results[i]
	}
	for run := 0; run < runs; run++ {
		for k := range systems {
			i := (k + run) % len(systems)
			m := systems[i].run(t)
			results[i].runs = append(results[i].runs, m)
			t.Logf("run %d: %-9s %.0f MB/s (%s), RSS %s, CPU %.2fs, load %s", run+1, systems[i].key,
				float64(total)/1e6/m.wall.Seconds(), m.wall.Round(time.Millisecond), ibMib(m.rss), m.cpu, gcLoad())
		}
	}

	startup := startupRSS(t, cleanerBin, "verify", "--help")
	targets := vbEvaluate(by, total, startup)
	report := verifyMarkdown(results, targets, len(files), total, runs, startup, time.Since(began))
	fmt.Print("\n" + report)
	writeReport(t, filepath.Join(root, "docs", "bench-verify.md"), report, partial, "VERIFYBENCH_RUNS")
	for _, r := range targets {
		if r.status == ppVerdictMissed {
			t.Errorf("%s: %s (%s)", r.target, r.result, r.status)
		}
	}
	t.Logf("total %s", time.Since(began).Round(time.Second))
}

// vbBlobFiles lists the blobs' data files under the storage root, sorted
// (the order verify reads them in), and their total size.
func vbBlobFiles(t *testing.T, root string) ([]string, int64) {
	t.Helper()
	var files []string
	var total int64
	err := filepath.WalkDir(filepath.Join(root, vbBlobsRootRel), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.Name() != "data" || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files = append(files, p)
		total += info.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files, total
}

// vbCheckSums checks `sha256sum`'s (or `openssl dgst -r`'s) lines: each
// file hashes to its directory's name.
func vbCheckSums(t *testing.T, out []byte, files []string) {
	t.Helper()
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		sum, file, ok := strings.Cut(sc.Text(), " ")
		file = strings.TrimLeft(file, " *")
		if !ok || filepath.Base(filepath.Dir(file)) != sum {
			t.Fatalf("checksum line %q: not the blob's digest", sc.Text())
		}
		n++
	}
	if n != len(files) {
		t.Fatalf("%d checksums, want %d", n, len(files))
	}
}

func vbEvaluate(by map[string]*vbResult, total, startup int64) []ibTarget {
	v, s := by["verify"].mbps(total), by["sha256sum"].mbps(total)
	ratio := ppMedian(v) / ppMedian(s)
	best := slices.Max(v) / ppMedian(s)
	n := max(ppSpread(v), ppSpread(s)) / 2
	rss := by["verify"].maxOf(func(m vbMeasure) int64 { return m.rss })
	return []ibTarget{
		{
			target: fmt.Sprintf("`dvcr-cleaner verify` ≥ %.1f × `sha256sum` of the same files (warm)", vbTarget),
			result: fmt.Sprintf("%.2f × (%.0f against %.0f MB/s; noise ±%.0f%%; fastest run %.2f ×)", ratio, ppMedian(v), ppMedian(s), 100*n, best),
			status: ratioVerdict(ratio, best, vbTarget, n),
		},
		{
			target: fmt.Sprintf("peak RSS of `dvcr-cleaner verify` ≤ %d MiB", ebRssTarget>>20),
			result: fmt.Sprintf("%s (of which the binary's start, `dvcr-cleaner verify --help`: %s)", ibMib(rss), ibMib(startup)),
			status: ppVerdict(rss <= ebRssTarget),
		},
	}
}

func verifyMarkdown(results []*vbResult, targets []ibTarget, blobs int, total int64, runs int, startup int64, elapsed time.Duration) string {
	var b strings.Builder
	b.WriteString("# Benchmark: `dvcr-cleaner verify`\n\n")
	b.WriteString("Generated by `go test -tags bench ./test/bench/ -run TestBenchVerify` (`test/bench/verify_test.go`).\n\n")
	writeMachine(&b)
	fmt.Fprintf(&b, "- CPU: %s\n", ppCpuModel())
	fmt.Fprintf(&b, "- Go: %s, %s/%s; kernel %s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, kernelRelease())
	fmt.Fprintf(&b, "- Filesystem of the store: %s\n", mountOf(os.TempDir()))
	fmt.Fprintf(&b, "- Store: %d blobs, %d bytes (%s) under `%s`: the import benchmark's 1 GiB raw image and %d images of 16 MiB of pseudo-random bytes, each imported with `dvcr import` (a layer, a config and a manifest each); no server running during the runs\n", blobs, total, ibMib(total), vbBlobsRootRel, vbSmallImages)
	fmt.Fprintf(&b, "- Peers: `sha256sum` (%s) with every blob's data file as arguments, in verify's order; `openssl dgst -sha256 -r` (%s), the same files, for comparison only\n", toolVersion("sha256sum", "--version"), toolVersion("openssl", "version"))
	b.WriteString("- Warm: the page cache cannot be dropped here, so every system runs once untimed first and every timed pass reads the blobs from the page cache; the comparison is of hashing and reading, not of the disk\n")
	fmt.Fprintf(&b, "- %d runs per system, the order rotated each run; wall time process start to exit, median; MB/s = 10^6 bytes of blob data / s; noise = half the relative range (max-min)/median of the runs. `dvcr-cleaner verify` also reads every repository's links and manifests and records its result (`dvcr/verify/results.json`)\n", runs)
	fmt.Fprintf(&b, "- Whole benchmark: %s\n\n", elapsed.Round(time.Second))
	b.WriteString("| System | wall s | MB/s | runs MB/s | noise | peak RSS | CPU s |\n|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %.2f | %.0f | %s | ±%.0f%% | %s | %.2f |\n", r.sys.title,
			r.median(func(m vbMeasure) float64 { return m.wall.Seconds() }), ppMedian(r.mbps(total)), runsList(r.mbps(total)),
			100*ppSpread(r.mbps(total))/2, ibMib(r.maxOf(func(m vbMeasure) int64 { return m.rss })), r.median(func(m vbMeasure) float64 { return m.cpu }))
	}
	for _, r := range results {
		if r.sys.dvcr {
			fmt.Fprintf(&b, "\nPeak RSS: `/usr/bin/time %%M`, the largest of the runs. `dvcr-cleaner verify --help` alone peaks at %s; /proc/PID/status of the verify sampled every 20 ms: VmRSS %s, RssAnon %s, RssFile (the executable's pages) %s (each its own maximum over the runs).\n",
				ibMib(startup), ibMib(r.maxOf(func(m vbMeasure) int64 { return m.peaks.rss })), ibMib(r.maxOf(func(m vbMeasure) int64 { return m.peaks.anon })), ibMib(r.maxOf(func(m vbMeasure) int64 { return m.peaks.file })))
		}
	}
	b.WriteString("\n## Targets\n\n")
	b.WriteString("Throughput: met when the ratio of the medians reaches the target; *within noise* when it is short by less than the larger run-to-run noise of the two systems compared and the fastest run reaches the target against the other median; **missed** otherwise (the test fails).\n\n")
	b.WriteString("| Target | Result | Status |\n|---|---|---|\n")
	for _, tg := range targets {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", tg.target, tg.result, tg.status)
	}
	return b.String()
}
