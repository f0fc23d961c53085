//go:build bench

// `dvcr export` against what a user runs today for the same result, from
// the same DVCR server, in the same run, on the same filesystem:
//   - the disk file as stored (a 1 GiB raw image): `dvcr export FILE`
//     against `skopeo copy docker://… dir:DIR` (both fsync the file);
//   - qcow2 → raw (a qcow2 of 4 GiB virtual size holding 1 GiB of data in
//     scattered extents): `dvcr export --format raw` against `skopeo copy`,
//     `tar -x` of the layer and `qemu-img convert -O raw`, plus an fsync of
//     the raw file (dvcr export fsyncs its output; qemu-img convert does
//     not); outputs byte-identical, and the space DVCR's output takes;
//   - the peak RSS of every `dvcr export`.
//
// Writes docs/bench-export.md.
package bench

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/dvcr/dvcr/test/dvcrtest"
)

const (
	ebDefaultRuns  = 5
	ebStoredTarget = 0.9      // dvcr export / skopeo copy, as stored
	ebRawTarget    = 1.0      // dvcr export --format raw / skopeo + tar + qemu-img convert
	ebRssTarget    = 64 << 20 // peak RSS of dvcr export (and dvcr-cleaner verify)
	ebDuTarget     = 1.05     // space taken by the raw output / data in the qcow2

	ebRepoRaw   = "cvi/bench-export-raw"
	ebRepoQcow2 = "cvi/bench-export-qcow2"
)

// ebSystem is one measured way of getting the disk out of DVCR.
type ebSystem struct {
	key   string
	title string
	short string // in the targets
	dvcr  bool   // a dvcr export: RSS target and sampled RSS
	bytes int64  // the output's size: MB/s = bytes / wall
	run   func(t *testing.T, run int) ebMeasure
}

// ebStep is one process of a pipeline.
type ebStep struct {
	name string
	wall time.Duration
	rss  int64
	cpu  float64
}

// ebMeasure is one run of a system.
type ebMeasure struct {
	wall      time.Duration   // process start to exit (pipeline: first start to the fsync's end)
	steps     []ebStep        // the pipeline's processes; one for a single command
	reported  float64         // dvcr export's own `seconds`
	sha       string          // hex sha256 of the output (dvcr: reported; pipeline: hashed in run 1)
	du        int64           // space the output takes
	peaks     rssPeaks        // sampled /proc/PID/status of dvcr export
	serverCPU float64         // user+system seconds of dvcr serve during the run
	phases    []time.Duration // dvcr export: stream, after the stream, sync (lineClock.exportPhases)
}

func (m ebMeasure) rss() int64 {
	var hi int64
	for _, s := range m.steps {
		hi = max(hi, s.rss)
	}
	return hi
}

func (m ebMeasure) cpu() float64 {
	var c float64
	for _, s := range m.steps {
		c += s.cpu
	}
	return c
}

type ebResult struct {
	sys  *ebSystem
	runs []ebMeasure
}

func (r *ebResult) mbps() []float64 {
	var xs []float64
	for _, m := range r.runs {
		xs = append(xs, float64(r.sys.bytes)/1e6/m.wall.Seconds())
	}
	return xs
}

func (r *ebResult) median(f func(m ebMeasure) float64) float64 {
	var xs []float64
	for _, m := range r.runs {
		xs = append(xs, f(m))
	}
	return ppMedian(xs)
}

func (r *ebResult) maxOf(f func(m ebMeasure) int64) int64 {
	var hi int64 = -1
	for _, m := range r.runs {
		hi = max(hi, f(m))
	}
	return hi
}

// ebFacts are what the report says about the set-up.
type ebFacts struct {
	img               *ebImages
	runs              int
	rawSHA            string // of qemu-img convert's output
	startupRSS        int64  // dvcr export --help, the installed copy
	linkedStartupRSS  int64  // the same of bin/dvcr as the linker wrote it
	skopeo, qemu, tar string
	total             time.Duration
}

// TestBenchExport: EXPORTBENCH_RUNS (default 5; fewer than 3 leave
// docs/bench-export.md as it is); the images are kept in tmp/bench-export/
// (EXPORTBENCH_DATA=DIR: there) across runs; EXPORTBENCH_PERF=DIR records,
// after the measured runs, one export of each image under `perf record -g`.
func TestBenchExport(t *testing.T) {
	began := time.Now()
	root := dvcrtest.RepoRoot(t)
	dvcrBin := filepath.Join(root, "bin", "dvcr")
	for _, bin := range []string{dvcrBin, "/usr/bin/time"} {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("%s: %v (run `make build`; /usr/bin/time is Debian's package time)", bin, err)
		}
	}
	for _, tool := range []string{"skopeo", "qemu-img", "qemu-io", "tar"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed (make deps): %v", tool, err)
		}
	}
	runs := ebDefaultRuns
	if v := os.Getenv("EXPORTBENCH_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("EXPORTBENCH_RUNS=%q: want a whole number of runs, 1 or more", v)
		}
		runs = n
	}
	partial := runs < 3

	data := os.Getenv("EXPORTBENCH_DATA")
	if data == "" {
		data = filepath.Join(root, "tmp", "bench-export", "v1")
	}
	start := time.Now()
	img := ebMakeImages(t, data)
	t.Logf("images in %s (%s): raw %d bytes; qcow2 %d bytes, %d bytes of data in %d extents (%d written late, out of order), qemu-img map: %d entries",
		data, time.Since(start).Round(time.Millisecond), int64(ibDefaultSize), img.qcow2Size, img.dataBytes, img.extents, img.late, img.mapEntries)

	dir := t.TempDir()
	t.Logf("work directory %s", dir)
	srvDir := filepath.Join(dir, "srv") // the storage root and every output: one filesystem
	clientBin := installedCopy(t, dvcrBin, filepath.Join(dir, "bin"))
	dvcrFlavor := &ppFlavor{name: "DVCR", bin: dvcrBin, dvcr: true,
		args: func(cfg string) []string { return []string{"serve", "--config", cfg} }}
	srv := ppStartRegistry(t, dvcrFlavor, filepath.Join(srvDir, "dvcr"))
	for _, im := range []struct{ file, repo, format string }{{img.raw, ebRepoRaw, "raw"}, {img.qcow2, ebRepoQcow2, "qcow2"}} {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(dvcrBin, "import", "--registry", srv.base, "-o", "json", im.file, im.repo)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("dvcr import %s: %v\n%s\nserver: %s", im.file, err, stderr.String(), srv.stderr)
		}
		if res := ibParseResult(t, stdout.Bytes()); res.Format != im.format {
			t.Fatalf("dvcr import %s: %+v, want format %s", im.file, res, im.format)
		}
	}
	// The blobs are in the page cache from the import; read them once more
	// so that both sides of the first run find them there.
	ebWarm(t, srv.root)

	settle := func() {
		syscall.Sync()
		waitDiskIdle(t, srvDir)
	}
	outDir := func(key string, run int) string {
		d := filepath.Join(srvDir, fmt.Sprintf("out-%s-%d", key, run))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	serverCPU := func() time.Duration { return ppCpuTime(t, srv.cmd.Process.Pid) }
	dvcrExport := func(key, repo string, convert bool) func(t *testing.T, run int) ebMeasure {
		return func(t *testing.T, run int) ebMeasure {
			out := outDir(key, run)
			file := filepath.Join(out, "out.raw")
			args := []string{"export", "--registry", srv.base, "-o", "json"}
			if convert {
				args = append(args, "--format", "raw")
			}
			args = append(args, repo, file)
			settle()
			var m ebMeasure
			var stdout lineClock
			var stderr bytes.Buffer
			cpu0 := serverCPU()
			tm, err := runTimed(t, &stdout, &stderr, sampleRSS(&m.peaks), clientBin, args...)
			m.serverCPU = (serverCPU() - cpu0).Seconds()
			if err != nil {
				t.Fatalf("dvcr %v: %v\n%s\nserver: %s", args, err, stderr.String(), srv.stderr)
			}
			res := ebParseExport(t, stdout.Bytes())
			m.wall, m.reported, m.sha = tm.wall, res.Seconds, res.SHA256
			if stream, after, sync, ok := stdout.exportPhases(tm.started); ok {
				m.phases = []time.Duration{stream, after, sync}
			}
			m.steps = []ebStep{{name: "dvcr export", wall: tm.wall, rss: tm.rss, cpu: tm.cpu}}
			m.du = ebAllocated(t, file)
			if run == 0 && convert {
				// Once: the reported sha256 is the file's.
				if got := ebHashFile(t, file); got != res.SHA256 {
					t.Fatalf("dvcr export --format raw reported sha256 %s, the file hashes to %s", res.SHA256, got)
				}
			}
			if err := os.RemoveAll(out); err != nil {
				t.Fatal(err)
			}
			return m
		}
	}
	var qemuSHA string
	systems := []*ebSystem{
		{key: "skopeo", title: "As stored: `skopeo copy docker://… dir:DIR` (fsyncs each blob)", short: "`skopeo copy … dir:DIR`", bytes: ibDefaultSize,
			run: func(t *testing.T, run int) ebMeasure {
				out := filepath.Join(outDir("skopeo", run), "dir")
				settle()
				cpu0 := serverCPU()
				tm, layer := ebSkopeo(t, srv.base, ebRepoRaw, out)
				m := ebMeasure{wall: tm.wall, serverCPU: (serverCPU() - cpu0).Seconds(),
					steps: []ebStep{{name: "skopeo copy", wall: tm.wall, rss: tm.rss, cpu: tm.cpu}}}
				if st, err := os.Stat(layer); err != nil || st.Size() < ibDefaultSize {
					t.Fatalf("skopeo copy: layer %s: %v", layer, err)
				}
				if err := os.RemoveAll(filepath.Dir(out)); err != nil {
					t.Fatal(err)
				}
				return m
			}},
		{key: "dvcr", title: "As stored: `dvcr export REPO FILE`", dvcr: true, bytes: ibDefaultSize, run: dvcrExport("dvcr", ebRepoRaw, false)},
		{key: "pipeline", title: "qcow2 → raw: `skopeo copy` + `tar -x` + `qemu-img convert -O raw` + fsync", short: "`skopeo copy` + `tar -x` + `qemu-img convert -O raw` + fsync", bytes: ebVirtual,
			run: func(t *testing.T, run int) ebMeasure {
				out := outDir("pipeline", run)
				raw := filepath.Join(out, "out.raw")
				settle()
				var m ebMeasure
				cpu0 := serverCPU()
				tm, layer := ebSkopeo(t, srv.base, ebRepoQcow2, filepath.Join(out, "dir"))
				m.serverCPU = (serverCPU() - cpu0).Seconds()
				m.steps = append(m.steps, ebStep{name: "skopeo copy", wall: tm.wall, rss: tm.rss, cpu: tm.cpu})
				for _, step := range []struct {
					name string
					args []string
				}{
					{"tar -x", []string{"tar", "-xf", layer, "-C", out}},
					{"qemu-img convert", []string{"qemu-img", "convert", "-f", "qcow2", "-O", "raw", filepath.Join(out, "disk", "disk.qcow2"), raw}},
				} {
					var stderr bytes.Buffer
					tm, err := ibRunTimed(t, io.Discard, &stderr, step.args[0], step.args[1:]...)
					if err != nil {
						t.Fatalf("%v: %v\n%s", step.args, err, stderr.String())
					}
					m.steps = append(m.steps, ebStep{name: step.name, wall: tm.wall, rss: tm.rss, cpu: tm.cpu})
				}
				syncStart := time.Now()
				if err := ebFsync(raw); err != nil {
					t.Fatal(err)
				}
				m.steps = append(m.steps, ebStep{name: "fsync", wall: time.Since(syncStart), rss: -1})
				m.wall = time.Since(tm.started)
				m.du = ebAllocated(t, raw)
				if qemuSHA == "" {
					qemuSHA = ebHashFile(t, raw)
				}
				if err := os.RemoveAll(out); err != nil {
					t.Fatal(err)
				}
				return m
			}},
		{key: "dvcr-raw", title: "qcow2 → raw: `dvcr export --format raw REPO out.raw`", dvcr: true, bytes: ebVirtual, run: dvcrExport("dvcr-raw", ebRepoQcow2, true)},
	}
	results := make([]*ebResult, len(systems))
	by := map[string]*ebResult{}
	for i, s := range systems {
		results[i] = &ebResult{sys: s}
		by[s.key] = results[i]
	}
	for run := 0; run < runs; run++ {
		// Rotate the order, so that no system always follows the same one.
		for k := range systems {
			i := (k + run) % len(systems)
			m := systems[i].run(t, run)
			results[i].runs = append(results[i].runs, m)
			t.Logf("run %d: %-8s %.0f MB/s (%s; %s), RSS %s, CPU %.2fs, server CPU %.2fs, output on disk %s, load %s",
				run+1, systems[i].key, float64(systems[i].bytes)/1e6/m.wall.Seconds(), m.wall.Round(time.Millisecond),
				ebStepsLine(m.steps, m.phases), ibMib(m.rss()), m.cpu(), m.serverCPU, ibMib(m.du), gcLoad())
		}
	}
	// Byte-identical: every dvcr export --format raw reported the sha256
	// of qemu-img convert's output (hashed once; the first DVCR output was
	// hashed too, to check that the reported sum is the file's).
	for i, m := range by["dvcr-raw"].runs {
		if m.sha != qemuSHA {
			t.Fatalf("run %d: dvcr export --format raw wrote sha256 %s, qemu-img convert -O raw %s", i+1, m.sha, qemuSHA)
		}
	}
	for i, m := range by["dvcr"].runs {
		if m.sha != img.rawSHA {
			t.Fatalf("run %d: dvcr export wrote sha256 %s, the imported file is %s", i+1, m.sha, img.rawSHA)
		}
	}
	if perfDir := os.Getenv("EXPORTBENCH_PERF"); perfDir != "" {
		ebPerf(t, perfDir, dvcrBin, srv.base, srvDir)
	}
	srv.stop(t)

	facts := ebFacts{img: img, runs: runs, rawSHA: qemuSHA,
		startupRSS:       startupRSS(t, clientBin, "export", "--help"),
		linkedStartupRSS: startupRSS(t, dvcrBin, "export", "--help"),
		skopeo:           toolVersion("skopeo", "--version"),
		qemu:             toolVersion("qemu-img", "--version"),
		tar:              toolVersion("tar", "--version"),
		total:            time.Since(began)}
	rep := ebEvaluate(by, facts)
	report := exportMarkdown(results, rep, facts)
	fmt.Print("\n" + report)
	writeReport(t, filepath.Join(root, "docs", "bench-export.md"), report, partial, "EXPORTBENCH_RUNS")
	for _, r := range rep {
		if r.status == ppVerdictMissed {
			t.Errorf("%s: %s (%s)", r.target, r.result, r.status)
		}
	}
	t.Logf("total %s", time.Since(began).Round(time.Second))
}

// ebWarm reads every file under root.
func ebWarm(t *testing.T, root string) {
	t.Helper()
	buf := make([]byte, ppIoBuf)
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.CopyBuffer(io.Discard, f, buf)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// ebPerf records one export of each image under `perf record -g` into
// DIR/export-stored.data and DIR/export-raw.data (not measured).
func ebPerf(t *testing.T, dir, dvcrBin, base, srvDir string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("EXPORTBENCH_PERF=%q: %v", dir, err)
	}
	for _, p := range []struct{ name, repo, format string }{{"stored", ebRepoRaw, ""}, {"raw", ebRepoQcow2, "raw"}} {
		out := filepath.Join(srvDir, "perf.out")
		args := []string{"record", "-F", "999", "-g", "-o", filepath.Join(dir, "export-"+p.name+".data"), "--", dvcrBin, "export", "--registry", base}
		if p.format != "" {
			args = append(args, "--format", p.format)
		}
		args = append(args, p.repo, out)
		if msg, err := exec.Command("perf", args...).CombinedOutput(); err != nil {
			t.Fatalf("perf record: %v\n%s", err, msg)
		}
		t.Logf("perf: %s", filepath.Join(dir, "export-"+p.name+".data"))
		if err := os.Remove(out); err != nil {
			t.Fatal(err)
		}
	}
}
