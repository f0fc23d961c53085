package e2e

import (
	"bytes"
	"cmp"
	cryptorand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dvcr/dvcr/test/dvcrtest"
)

// TestExportFormatRaw: --format raw converts qcow2 v2 and v3 (cluster
// sizes 512 B to 2 MiB, zero clusters, clusters out of guest order, zlib-
// and zstd-compressed clusters mixed with stored ones) in Go to a sparse
// file equal to `qemu-img convert -O raw`; raw is written as stored; iso
// and compressed files are refused by name (vmdk and vdi:
// TestExportFormatRawVMDKVDI).
func TestExportFormatRaw(t *testing.T) {
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{})
	dir := t.TempDir()
	writes := []string{"write -P 0xab 40M 1M", "write -P 0xcd 1M 512k", "write -P 0x11 63M 4k", "write -P 0x22 5000 3000"}
	cases := map[string]string{
		"v3":      makeWritten(t, dir, "v3", "qcow2", nil, append(writes, "write -z 40M 64k")...),
		"v2":      makeWritten(t, dir, "v2", "qcow2", []string{"-o", "compat=0.10"}, writes...),
		"c512":    makeWritten(t, dir, "c512", "qcow2", []string{"-o", "cluster_size=512"}, writes...),
		"c2m":     makeWritten(t, dir, "c2m", "qcow2", []string{"-o", "cluster_size=2M"}, append(writes, "write -z 40M 2M")...),
		"random":  dvcrtest.MakeDiskFile(t, t.TempDir(), "random", "qcow2", "24M", 3<<20),
		"rawfile": dvcrtest.MakeDiskFile(t, t.TempDir(), "plain", "raw", "8M", 1<<20),
	}
	for name, opts := range map[string][]string{
		"zlib":    nil,
		"zstd":    {"-o", "compression_type=zstd"},
		"zlib-v2": {"-o", "compat=0.10"},
		"zlib-4k": {"-o", "cluster_size=4k"},
		"zstd-4k": {"-o", "compression_type=zstd,cluster_size=4k"},
	} {
		cases[name] = makeCompressedQcow2(t, dir, name, opts)
	}
	qemu := dvcrtest.Tool(t, "qemu-img", "apt-get install -y qemu-utils")
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			dvcrtest.MustImport(t, srv, src, "cvi/"+name)
			want := filepath.Join(t.TempDir(), "want.raw")
			runTool(t, qemu, "convert", "-O", "raw", src, want)
			out := filepath.Join(t.TempDir(), "got.raw")
			res := dvcrtest.MustExport(t, srv.Addr, "cvi/"+name, out, "--format", "raw")
			assertSameFile(t, out, want)
			assertResult(t, res, out, "raw")
			if name != "rawfile" && !isSparse(t, out) {
				t.Errorf("%s is not sparse", out)
			}
		})
	}
	xz := compress(t, cases["v3"], []string{"xz", "-k", "-f"}, ".xz")
	iso := makeISO(t, t.TempDir(), "cd")
	for name, c := range map[string]struct{ src, want string }{
		"xz file": {xz, "the disk file is xz compressed"},
		"iso":     {iso, "converting iso is not supported (qcow2, raw, vdi, vmdk only)"},
	} {
		t.Run(name, func(t *testing.T) {
			repo := "cvi/refused-" + strings.ReplaceAll(name, " ", "-")
			dvcrtest.MustImport(t, srv, c.src, repo)
			run := dvcrtest.Export(t, srv.Addr, repo, filepath.Join(t.TempDir(), "x.raw"), "--format", "raw")
			if run.ExitCode == 0 || !strings.Contains(run.Stderr, "cannot convert to raw: "+c.want) {
				t.Errorf("exit %d: %s", run.ExitCode, run.Stderr)
			}
		})
	}
}

// isSparse tells a file that takes less space than its length.
func isSparse(t *testing.T, path string) bool {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Blocks*512 < st.Size()
}

// mixedRaw writes a raw disk of size bytes holding extents of text (which
// compresses about 3:1), random bytes (which do not: qemu stores those
// clusters uncompressed) and a repeated byte (a cluster compresses to a
// few bytes, so several share a sector); the rest reads as zeros.
func mixedRaw(t *testing.T, path string, size int64, extents []rawExtent) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	rnd := mathrand.New(mathrand.NewPCG(uint64(size), 21))
	for _, e := range extents {
		b := make([]byte, e.n)
		switch e.kind {
		case "text":
			words := []string{"cluster ", "sector ", "guest ", "offset ", "qcow2 ", "zstd ", "zlib "}
			var w bytes.Buffer
			for w.Len() < len(b) {
				fmt.Fprintf(&w, "%s%d\n", words[rnd.IntN(len(words))], rnd.IntN(100000))
			}
			copy(b, w.Bytes())
		case "random":
			_, _ = cryptorand.Read(b)
		default:
			for i := range b {
				b[i] = 0xab
			}
		}
		if _, err := f.WriteAt(b, e.off); err != nil {
			t.Fatal(err)
		}
	}
}

type rawExtent struct {
	off  int64
	n    int
	kind string // text, random or repeated
}

// makeCompressedQcow2 converts a mixed raw disk of 64 MiB and 1.5 KiB (the
// last cluster partial) with `qemu-img convert -c`, then writes to it with
// qemu-io: stored clusters after the compressed ones, a compressed cluster
// partly rewritten (copied out uncompressed) and, in v3, zero clusters
// over compressed ones. It checks that the image holds compressed and
// stored clusters.
func makeCompressedQcow2(t *testing.T, dir, name string, opts []string) string {
	t.Helper()
	const mib = 1 << 20
	raw := filepath.Join(dir, name+".raw")
	mixedRaw(t, raw, 64*mib+1536, []rawExtent{
		{0, mib, "text"}, {3 * mib, mib, "random"}, {20 * mib, 192 << 10, "text"},
		{40 * mib, mib, "repeated"}, {50*mib + 4096, 100 << 10, "random"}, {63 * mib, mib + 1536, "text"},
	})
	qemu := dvcrtest.Tool(t, "qemu-img", "apt-get install -y qemu-utils")
	qemuIO := dvcrtest.Tool(t, "qemu-io", "apt-get install -y qemu-utils")
	path := filepath.Join(dir, name+".qcow2")
	runTool(t, qemu, append(append([]string{"convert", "-c", "-O", "qcow2"}, opts...), raw, path)...)
	writes := []string{"-c", "write -P 0x5a 30M 128k", "-c", "write -P 0x77 4k 4k"}
	if !slices.Contains(opts, "compat=0.10") {
		writes = append(writes, "-c", "write -z 40M 64k")
	}
	runTool(t, qemuIO, append(append([]string{"-f", "qcow2"}, writes...), path)...)
	check := qemuCheck(t, path)
	if check.CompressedClusters == 0 || check.AllocatedClusters <= check.CompressedClusters {
		t.Fatalf("%s: %d compressed clusters of %d allocated, want some of each", path, check.CompressedClusters, check.AllocatedClusters)
	}
	return path
}

// qemuCheckResult is what `qemu-img check --output=json` counts.
type qemuCheckResult struct {
	AllocatedClusters  int `json:"allocated-clusters"`
	CompressedClusters int `json:"compressed-clusters"`
}

func qemuCheck(t *testing.T, path string) qemuCheckResult {
	t.Helper()
	qemu := dvcrtest.Tool(t, "qemu-img", "apt-get install -y qemu-utils")
	out, err := exec.Command(qemu, "check", "--output=json", path).Output()
	if err != nil {
		t.Fatalf("qemu-img check %s: %v", path, err)
	}
	var res qemuCheckResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("qemu-img check %s: %v: %s", path, err, out)
	}
	return res
}

// TestExportFormatRawSparse: a qcow2 of 10 GiB holding about 92 MiB in
// extents scattered over it (zstd-compressed text, random data qemu
// stores uncompressed, patterns written afterwards, zero clusters over
// compressed ones) exports to a raw file equal to qemu-img's that takes no
// more than 1.05× the non-zero data `qemu-img map` reports.
func TestExportFormatRawSparse(t *testing.T) {
	const gib, mib = 1 << 30, 1 << 20
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{})
	qemu := dvcrtest.Tool(t, "qemu-img", "apt-get install -y qemu-utils")
	qemuIO := dvcrtest.Tool(t, "qemu-io", "apt-get install -y qemu-utils")
	dir := t.TempDir()
	var extents []rawExtent
	for i := range 40 {
		// Not cluster-aligned, so that clusters are partly data.
		extents = append(extents, rawExtent{int64(i)*250*mib + int64(i%7)*12345, 2*mib + i*1000, []string{"text", "random"}[i%2]})
	}
	raw := filepath.Join(dir, "sparse.raw")
	mixedRaw(t, raw, 10*gib, extents)
	src := filepath.Join(dir, "sparse.qcow2")
	runTool(t, qemu, "convert", "-c", "-O", "qcow2", "-o", "compression_type=zstd", raw, src)
	_ = os.Remove(raw)
	runTool(t, qemuIO, "-f", "qcow2", "-c", "write -P 0x5a 5G 8M", "-c", "write -P 0x33 9G 4M", "-c", "write -z 500M 1M", src)
	if c := qemuCheck(t, src); c.CompressedClusters == 0 || c.AllocatedClusters <= c.CompressedClusters {
		t.Fatalf("%d compressed clusters of %d allocated, want some of each", c.CompressedClusters, c.AllocatedClusters)
	}
	dvcrtest.MustImport(t, srv, src, "cvi/sparse")
	want := filepath.Join(dir, "want.raw")
	runTool(t, qemu, "convert", "-O", "raw", src, want)
	out := filepath.Join(dir, "got.raw")
	start := time.Now()
	res := dvcrtest.MustExport(t, srv.Addr, "cvi/sparse", out, "--format", "raw")
	t.Logf("exported in %v", time.Since(start).Round(time.Millisecond))
	if res.Bytes != 10*gib || res.Format != "raw" {
		t.Errorf("result bytes %d format %q, want %d raw", res.Bytes, res.Format, 10*gib)
	}
	assertSameSparse(t, out, want)
	data, used := qemuDataBytes(t, src), diskUsage(t, out)
	t.Logf("%d bytes of data, the output takes %d: %.4f×", data, used, float64(used)/float64(data))
	if float64(used) > 1.05*float64(data) {
		t.Errorf("the output takes %d bytes for %d bytes of data: more than 1.05×", used, data)
	}
}

// qemuDataBytes sums the extents of path that `qemu-img map` says hold
// data that does not read as zeros.
func qemuDataBytes(t *testing.T, path string) int64 {
	t.Helper()
	qemu := dvcrtest.Tool(t, "qemu-img", "apt-get install -y qemu-utils")
	out, err := exec.Command(qemu, "map", "--output=json", path).Output()
	if err != nil {
		t.Fatalf("qemu-img map %s: %v", path, err)
	}
	var extents []struct {
		Length     int64 `json:"length"`
		Data, Zero bool
	}
	if err := json.Unmarshal(out, &extents); err != nil {
		t.Fatalf("qemu-img map %s: %v", path, err)
	}
	var n int64
	for _, e := range extents {
		if e.Data && !e.Zero {
			n += e.Length
		}
	}
	return n
}

// diskUsage is what du counts: the blocks a file takes.
func diskUsage(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Blocks * 512
}

// assertSameSparse compares two files byte for byte, as cmp does, reading
// only where either holds data: SEEK_DATA may call a hole data but never
// data a hole, so where neither has data both read as zeros. (cmp reads
// every hole of two 10 GiB files: minutes on a busy machine.)
func assertSameSparse(t *testing.T, got, want string) {
	t.Helper()
	files := make([]*os.File, 2)
	sizes := make([]int64, 2)
	var segs [][2]int64
	for i, path := range []string{got, want} {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		files[i], sizes[i] = f, st.Size()
		segs = append(segs, dataSegments(t, f, st.Size())...)
	}
	if sizes[0] != sizes[1] {
		t.Fatalf("%s has %d bytes, %s %d", got, sizes[0], want, sizes[1])
	}
	slices.SortFunc(segs, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
	a, b := make([]byte, 1<<20), make([]byte, 1<<20)
	var done int64 // compared up to here
	for _, s := range segs {
		for off := max(s[0], done); off < s[1]; off += int64(len(a)) {
			n := min(int64(len(a)), s[1]-off)
			if _, err := files[0].ReadAt(a[:n], off); err != nil {
				t.Fatal(err)
			}
			if _, err := files[1].ReadAt(b[:n], off); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a[:n], b[:n]) {
				t.Fatalf("%s and %s differ in the %d bytes at %d", got, want, n, off)
			}
		}
		done = max(done, s[1])
	}
}

// dataSegments lists where f holds data, by SEEK_DATA and SEEK_HOLE.
func dataSegments(t *testing.T, f *os.File, size int64) [][2]int64 {
	t.Helper()
	var segs [][2]int64
	for off := int64(0); off < size; {
		start, err := f.Seek(off, unix.SEEK_DATA)
		if errors.Is(err, syscall.ENXIO) {
			break // only a hole is left
		}
		if err != nil {
			t.Fatal(err)
		}
		end, err := f.Seek(start, unix.SEEK_HOLE)
		if err != nil {
			t.Fatal(err)
		}
		segs = append(segs, [2]int64{start, end})
		off = end
	}
	return segs
}
