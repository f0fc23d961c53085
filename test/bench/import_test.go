//go:build bench

// Import throughput of `dvcr import` from a local HTTP server into DVCR:
// a 1 GiB raw disk image, and the same image gzip- and xz-compressed,
// against the machine's ceiling measured in the same run on the same bytes
// (`curl -o` of the same URL to a file on the same filesystem, fsynced, and
// the upstream registry's monolithic push of the raw image), and the peak RSS
// of the import process. Writes docs/bench-import.md.
package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dvcr/dvcr/test/dvcrtest"
)

const (
	ibDefaultSize = 1 << 30 // the raw image
	ibExtent      = 4 << 20 // its extents: random, zeros, pattern, zeros, ...
	ibDefaultRuns = 5
	ibRssTarget   = 64 << 20 // peak RSS of the import process, whatever the image size
	ibRawTarget   = 0.9      // raw import / the slower ceiling
	ibXzTarget    = 0.8      // xz import (MB/s of stored bytes) / raw import
)

// ibSystem is one measured way of moving the image.
type ibSystem struct {
	key   string
	title string
	file  string // the file served, under the data directory
	run   func(t *testing.T, run int) ibMeasure
}

// ibMeasure is one run of a system.
type ibMeasure struct {
	wall      time.Duration // measured by the test, process start to exit (push: POST to 201)
	reported  float64       // the importer's own `seconds`, 0 for the ceilings
	bytes     int64         // bytes moved: the file as served (sourceBytes of an import)
	unpacked  int64         // decompressed size (unpackedBytes of an import)
	clientRSS int64         // peak RSS of the import or curl process, -1 when in the test process
	clientCPU float64       // user+system seconds of that process
	serverRSS int64         // VmHWM of the registry, -1 without one
	serverCPU float64       // user+system seconds of the registry during the run
}

type ibResult struct {
	sys  *ibSystem
	runs []ibMeasure
}

func (r *ibResult) mbps() []float64 {
	var xs []float64
	for _, m := range r.runs {
		xs = append(xs, float64(m.bytes)/1e6/m.wall.Seconds())
	}
	return xs
}

func (r *ibResult) unpackedMbps() []float64 {
	var xs []float64
	for _, m := range r.runs {
		xs = append(xs, float64(m.unpacked)/1e6/m.wall.Seconds())
	}
	return xs
}

func (r *ibResult) median(f func(m ibMeasure) float64) float64 {
	var xs []float64
	for _, m := range r.runs {
		xs = append(xs, f(m))
	}
	return ppMedian(xs)
}

func (r *ibResult) maxOf(f func(m ibMeasure) int64) int64 {
	var hi int64 = -1
	for _, m := range r.runs {
		hi = max(hi, f(m))
	}
	return hi
}

// ibImportResult is the last line of `dvcr import -o json`.
type ibImportResult struct {
	Repository    string  `json:"repository"`
	Digest        string  `json:"digest"`
	Format        string  `json:"format"`
	Compression   string  `json:"compression"`
	StoredBytes   int64   `json:"storedBytes"`
	UnpackedBytes int64   `json:"unpackedBytes"`
	SourceBytes   int64   `json:"sourceBytes"`
	Seconds       float64 `json:"seconds"`
}

// TestBenchImport: IMPORTBENCH_SIZE (bytes, or with a MiB/GiB suffix; a
// multiple of 4 MiB) and IMPORTBENCH_RUNS (default 5) make a quick run, which
// leaves docs/bench-import.md as it is; the generated images are kept in
// tmp/bench-import/ (IMPORTBENCH_DATA=DIR: there) across runs;
// IMPORTBENCH_PERF=DIR records, after the measured runs, one import of each
// image under `perf record -g`.
func TestBenchImport(t *testing.T) {
	began := time.Now()
	root := dvcrtest.RepoRoot(t)
	dvcrBin := filepath.Join(root, "bin", "dvcr")
	regBin := filepath.Join(root, "bin", "registry")
	for _, bin := range []string{dvcrBin, regBin, "/usr/bin/time"} {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("%s: %v (run `make build` and `GOBIN=%s go install github.com/distribution/distribution/v3/cmd/registry@v3.1.2`; /usr/bin/time is Debian's package time)", bin, err, filepath.Join(root, "bin"))
		}
	}
	for _, tool := range []string{"curl", "xz", "gzip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed: %v", tool, err)
		}
	}
	size := ibEnvSize(t)
	runs := ibDefaultRuns
	if v := os.Getenv("IMPORTBENCH_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("IMPORTBENCH_RUNS=%q: want a whole number of runs, 1 or more", v)
		}
		runs = n
	}
	partial := size != ibDefaultSize || runs < 3

	dir := t.TempDir()
	t.Logf("work directory %s", dir)
	// xz -6 takes minutes over a GiB on 2 cores: the images are kept in
	// the repository's tmp/ (ignored by git) for the next runs; the version
	// in the name changes with ibWriteRaw.
	data := os.Getenv("IMPORTBENCH_DATA")
	if data == "" {
		data = filepath.Join(root, "tmp", "bench-import", fmt.Sprintf("v1-%d", size))
	}
	start := time.Now()
	img := ibMakeImages(t, data, size)
	t.Logf("images in %s (%s): raw %d bytes, gz %d, xz %d", data, time.Since(start).Round(time.Millisecond), img.size["disk.raw"], img.size["disk.raw.gz"], img.size["disk.raw.xz"])

	// The images are served from the test process: http.FileServer sends
	// a file with sendfile(2) and a Content-Length, so it costs little CPU.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.FileServer(http.Dir(data))}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Shutdown(context.Background()) })
	srcBase := "http://" + ln.Addr().String() + "/"
	// Warm the page cache with the images, as a web server would have it.
	for name := range img.size {
		f, err := os.Open(filepath.Join(data, name))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, f)
		f.Close()
	}

	dvcrFlavor := &ppFlavor{name: "DVCR", bin: dvcrBin, dvcr: true,
		args: func(cfg string) []string { return []string{"serve", "--config", cfg} }}
	upFlavor := &ppFlavor{name: "upstream", bin: regBin,
		args: func(cfg string) []string { return []string{"serve", cfg} }}
	upstreamVersion := ppBinVersion(regBin)
	srvDir := filepath.Join(dir, "srv") // storage roots and curl's file: one filesystem
	client := ppNewClient()

	// settle: before every measured run, the previous run's files are gone
	// and the disk has finished its writes and discards.
	settle := func() {
		syscall.Sync()
		waitDiskIdle(t, srvDir)
	}
	importRun := func(file, compression string) func(t *testing.T, run int) ibMeasure {
		return func(t *testing.T, run int) ibMeasure {
			srv := ppStartRegistry(t, dvcrFlavor, filepath.Join(srvDir, "dvcr"))
			repo := fmt.Sprintf("cvi/bench-%s-%d", strings.ReplaceAll(file, ".", "-"), run)
			settle()
			cpu0 := ppCpuTime(t, srv.cmd.Process.Pid)
			var stdout, stderr bytes.Buffer
			tm, err := ibRunTimed(t, &stdout, &stderr, dvcrBin, "import", "--registry", srv.base, "-o", "json", srcBase+file, repo)
			serverCPU := (ppCpuTime(t, srv.cmd.Process.Pid) - cpu0).Seconds()
			if err != nil {
				t.Fatalf("dvcr import %s: %v\n%s\nserver: %s", file, err, stderr.String(), srv.stderr)
			}
			res := ibParseResult(t, stdout.Bytes())
			if res.Format != "raw" || res.Compression != compression || res.SourceBytes != img.size[file] || res.UnpackedBytes != size {
				t.Fatalf("dvcr import %s: %+v, want format raw, compression %q, sourceBytes %d, unpackedBytes %d", file, res, compression, img.size[file], size)
			}
			hwm, err := ppVmHWM(srv.cmd.Process.Pid)
			if err != nil {
				t.Fatal(err)
			}
			srv.stop(t)
			if err := os.RemoveAll(srv.root); err != nil {
				t.Fatal(err)
			}
			return ibMeasure{wall: tm.wall, reported: res.Seconds, bytes: res.SourceBytes, unpacked: res.UnpackedBytes,
				clientRSS: tm.rss, clientCPU: tm.cpu, serverRSS: hwm, serverCPU: serverCPU}
		}
	}
	systems := []*ibSystem{
		{key: "curl", title: "Ceiling: `curl -o` of disk.raw to a file + fsync", file: "disk.raw",
			run: func(t *testing.T, run int) ibMeasure {
				out := filepath.Join(srvDir, "curl.raw")
				if err := os.MkdirAll(srvDir, 0o755); err != nil {
					t.Fatal(err)
				}
				settle()
				var stdout, stderr bytes.Buffer
				tm, err := ibRunTimed(t, &stdout, &stderr, "curl", "-sSf", "-o", out, srcBase+"disk.raw")
				if err != nil {
					t.Fatalf("curl: %v\n%s", err, stderr.String())
				}
				// The registries fsync a blob before it is linked (the
				// filesystem driver's Commit): so does this ceiling.
				f, err := os.Open(out)
				if err == nil {
					err = f.Sync()
					f.Close()
				}
				if err != nil {
					t.Fatal(err)
				}
				wall := time.Since(tm.started)
				st, err := os.Stat(out)
				if err != nil || st.Size() != size {
					t.Fatalf("curl wrote %v bytes (%v), want %d", st.Size(), err, size)
				}
				if err := os.Remove(out); err != nil {
					t.Fatal(err)
				}
				return ibMeasure{wall: wall, bytes: size, unpacked: size, clientRSS: tm.rss, clientCPU: tm.cpu, serverRSS: -1}
			}},
		{key: "push", title: "Ceiling: upstream registry, monolithic push of disk.raw (POST + PUT ?digest=)", file: "disk.raw",
			run: func(t *testing.T, run int) ibMeasure {
				srv := ppStartRegistry(t, upFlavor, filepath.Join(srvDir, "upstream"))
				f, err := os.Open(filepath.Join(data, "disk.raw"))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				settle()
				cpu0 := ppCpuTime(t, srv.cmd.Process.Pid)
				d, err := ibPushMonolithic(client, srv.base, fmt.Sprintf("cvi/bench-push-%d", run), f, size, img.rawDigest)
				serverCPU := (ppCpuTime(t, srv.cmd.Process.Pid) - cpu0).Seconds()
				if err != nil {
					t.Fatalf("upstream push: %v\n%s", err, srv.stderr)
				}
				hwm, err := ppVmHWM(srv.cmd.Process.Pid)
				if err != nil {
					t.Fatal(err)
				}
				srv.stop(t)
				if err := os.RemoveAll(srv.root); err != nil {
					t.Fatal(err)
				}
				return ibMeasure{wall: d, bytes: size, unpacked: size, clientRSS: -1, serverRSS: hwm, serverCPU: serverCPU}
			}},
		{key: "raw", title: "DVCR: `dvcr import` of disk.raw", file: "disk.raw", run: importRun("disk.raw", "")},
		{key: "gz", title: "DVCR: `dvcr import` of disk.raw.gz", file: "disk.raw.gz", run: importRun("disk.raw.gz", "gzip")},
		{key: "xz", title: "DVCR: `dvcr import` of disk.raw.xz", file: "disk.raw.xz", run: importRun("disk.raw.xz", "xz")},
	}
	results := make([]*ibResult, len(systems))
	for i, s := range systems {
		results[i] = &ibResult{sys: s}
	}
	for run := 0; run < runs; run++ {
		// Rotate the order, so that no system always follows the same one.
		for k := range systems {
			i := (k + run) % len(systems)
			m := systems[i].run(t, run)
			results[i].runs = append(results[i].runs, m)
			t.Logf("run %d: %-4s %.0f MB/s (%d bytes in %s; unpacked %.0f MB/s; importer's seconds %.3f), client RSS %s CPU %.2fs, server RSS %s CPU %.2fs",
				run+1, systems[i].key, float64(m.bytes)/1e6/m.wall.Seconds(), m.bytes, m.wall.Round(time.Millisecond),
				float64(m.unpacked)/1e6/m.wall.Seconds(), m.reported, ibMib(m.clientRSS), m.clientCPU, ibMib(m.serverRSS), m.serverCPU)
		}
	}
	if perfDir := os.Getenv("IMPORTBENCH_PERF"); perfDir != "" {
		ibPerf(t, perfDir, dvcrFlavor, dvcrBin, srvDir, srcBase)
	}

	rep := ibEvaluate(results)
	report := importMarkdown(results, rep, img, size, runs, upstreamVersion, time.Since(began))
	fmt.Print("\n" + report)
	writeReport(t, filepath.Join(root, "docs", "bench-import.md"), report, partial, "IMPORTBENCH_SIZE or IMPORTBENCH_RUNS")
	for _, r := range rep.targets {
		if r.status == ppVerdictMissed {
			t.Errorf("%s: %s (%s)", r.target, r.result, r.status)
		}
	}
	t.Logf("total %s", time.Since(began).Round(time.Second))
}
