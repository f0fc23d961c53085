package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dvcr/dvcr/test/dvcrtest"
)

// makeQcow2 creates an empty qcow2 with qemu-img and writes to it with
// qemu-io, high offsets first so that clusters are not in guest order.
func makeQcow2(t *testing.T, dir, name string, opts []string, writes ...string) string {
	t.Helper()
	qemu := dvcrtest.Tool(t, "qemu-img", "apt-get install -y qemu-utils")
	qemuIO := dvcrtest.Tool(t, "qemu-io", "apt-get install -y qemu-utils")
	path := filepath.Join(dir, name+".qcow2")
	runTool(t, qemu, append(append([]string{"create", "-q", "-f", "qcow2"}, opts...), path, "64M")...)
	args := []string{"-f", "qcow2"}
	for _, w := range writes {
		args = append(args, "-c", w)
	}
	runTool(t, qemuIO, append(args, path)...)
	return path
}

// TestExportFormatRaw: --format raw converts qcow2 v2 and v3 (cluster
// sizes 512 B to 2 MiB, zero clusters, clusters out of guest order) in Go
// to a sparse file equal to `qemu-img convert -O raw`; raw is written as
// stored; compressed clusters, iso and compressed files are refused by
// name (vmdk and vdi: TestExportFormatRawVMDKVDI).
func TestExportFormatRaw(t *testing.T) {
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{})
	dir := t.TempDir()
	writes := []string{"write -P 0xab 40M 1M", "write -P 0xcd 1M 512k", "write -P 0x11 63M 4k", "write -P 0x22 5000 3000"}
	cases := map[string]string{
		"v3":      makeQcow2(t, dir, "v3", nil, append(writes, "write -z 40M 64k")...),
		"v2":      makeQcow2(t, dir, "v2", []string{"-o", "compat=0.10"}, writes...),
		"c512":    makeQcow2(t, dir, "c512", []string{"-o", "cluster_size=512"}, writes...),
		"c2m":     makeQcow2(t, dir, "c2m", []string{"-o", "cluster_size=2M"}, append(writes, "write -z 40M 2M")...),
		"random":  dvcrtest.MakeDiskFile(t, t.TempDir(), "random", "qcow2", "24M", 3<<20),
		"rawfile": dvcrtest.MakeDiskFile(t, t.TempDir(), "plain", "raw", "8M", 1<<20),
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
	compressed := filepath.Join(dir, "comp.qcow2")
	runTool(t, qemu, "convert", "-c", "-O", "qcow2", cases["v3"], compressed) // patterns: they compress
	xz := compress(t, cases["v3"], []string{"xz", "-k", "-f"}, ".xz")
	iso := makeISO(t, t.TempDir(), "cd")
	for name, c := range map[string]struct{ src, want string }{
		"compressed clusters": {compressed, "the image has compressed clusters"},
		"xz file":             {xz, "the disk file is xz compressed"},
		"iso":                 {iso, "converting iso is not supported (qcow2, raw, vdi, vmdk only)"},
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
