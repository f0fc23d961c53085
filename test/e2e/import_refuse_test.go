package e2e

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dvcr/dvcr/test/dvcrtest"
)

// refusal is a hostile or broken image and what the import must say.
type refusal struct {
	name  string
	make  func(t *testing.T, dir string) string
	flags []string
	want  []string // substrings of the error, all required
}

func qemuImg(t *testing.T, args ...string) {
	t.Helper()
	runTool(t, dvcrtest.Tool(t, "qemu-img", "apt-get install -y qemu-utils"), args...)
}

var refusals = []refusal{
	{"backing file", func(t *testing.T, dir string) string {
		qemuImg(t, "create", "-f", "qcow2", filepath.Join(dir, "base.qcow2"), "16M")
		child := filepath.Join(dir, "child.qcow2")
		qemuImg(t, "create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", child)
		return child
	}, nil, []string{"backing file", "base.qcow2"}},
	{"external data file", func(t *testing.T, dir string) string {
		p := filepath.Join(dir, "ext.qcow2")
		qemuImg(t, "create", "-f", "qcow2", "-o", "data_file="+filepath.Join(dir, "ext.raw"), p, "16M")
		return p
	}, nil, []string{"external data file"}},
	{"unknown incompatible feature", func(t *testing.T, dir string) string {
		p := dvcrtest.MakeDiskFile(t, dir, "feat", "qcow2", "16M", 4096)
		patchFile(t, p, 72, func(b []byte) { binary.BigEndian.PutUint64(b, binary.BigEndian.Uint64(b)|1<<20) })
		return p
	}, nil, []string{"unknown incompatible features", "20"}},
	{"vmdk descriptor naming files", func(t *testing.T, dir string) string {
		p := filepath.Join(dir, "flat.vmdk")
		qemuImg(t, "create", "-f", "vmdk", "-o", "subformat=monolithicFlat", p, "16M")
		return p
	}, nil, []string{"vmdk descriptor", "flat-flat.vmdk"}},
	{"qcow2 header in an ISO system area", func(t *testing.T, dir string) string {
		iso := makeISO(t, dir, "trap")
		qcow := dvcrtest.MakeDiskFile(t, dir, "hidden", "qcow2", "16M", 0)
		header := make([]byte, 512)
		readAt(t, qcow, 0, header)
		patchFile(t, iso, 0, func(b []byte) { copy(b, header) })
		return iso
	}, nil, []string{"matches", "qcow2", "iso"}},
	{"vhd", func(t *testing.T, dir string) string {
		return dvcrtest.MakeDiskFile(t, dir, "disk", "vpc", "16M", 4096)
	}, nil, []string{"vhd", "not supported"}},
	{"vhdx", func(t *testing.T, dir string) string {
		return dvcrtest.MakeDiskFile(t, dir, "disk", "vhdx", "16M", 4096)
	}, nil, []string{"vhdx", "not supported"}},
	{"truncated qcow2", func(t *testing.T, dir string) string {
		p := dvcrtest.MakeDiskFile(t, dir, "cut", "qcow2", "16M", 2<<20)
		truncateHalf(t, p)
		return p
	}, nil, []string{"truncated"}},
	{"truncated xz", func(t *testing.T, dir string) string {
		p := compress(t, dvcrtest.MakeDiskFile(t, dir, "cut", "raw", "4M", 2<<20), []string{"xz", "-k", "-f"}, ".xz")
		truncateHalf(t, p)
		return p
	}, nil, []string{"xz"}},
	{"checksum mismatch", func(t *testing.T, dir string) string {
		return dvcrtest.MakeDiskFile(t, dir, "ok", "qcow2", "16M", 4096)
	}, []string{"--checksum", "sha256:" + strings.Repeat("0", 64)}, []string{"checksum mismatch", "sha256"}},
	{"empty file", func(t *testing.T, dir string) string {
		p := filepath.Join(dir, "empty.img")
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}, nil, []string{"empty"}},
}

// TestImportRefusals: each refusal fails the import with a message naming
// the reason, and leaves no tag behind.
func TestImportRefusals(t *testing.T) {
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{})
	for i, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			src := r.make(t, t.TempDir())
			repo := "vi/refused/case-" + string(rune('a'+i))
			run := dvcrtest.Import(t, srv, src, repo, r.flags...)
			if run.ExitCode == 0 {
				t.Fatalf("import succeeded: %+v", run.Result)
			}
			for _, w := range r.want {
				if !strings.Contains(run.Stderr, w) {
					t.Errorf("error does not say %q:\n%s", w, run.Stderr)
				}
			}
			assertNoTag(t, srv, repo)
		})
	}
}

func readAt(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// patchFile rewrites 8+ bytes at off through fn.
func patchFile(t *testing.T, path string, off int64, fn func([]byte)) {
	t.Helper()
	b := make([]byte, 512)
	readAt(t, path, off, b)
	fn(b)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func truncateHalf(t *testing.T, path string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, st.Size()/2); err != nil {
		t.Fatal(err)
	}
}
