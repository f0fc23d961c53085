package diskformat

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// The test images are made once per test binary by the real tools, which
// CI installs (hack/deps.sh); a missing tool fails the tests.
var (
	imgOnce sync.Once
	imgDir  string
	imgErr  string
)

func tool(t testing.TB, dir string, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, stderr.String())
	}
	return stdout.Bytes()
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// images returns the directory holding the test images.
func images(t testing.TB) string {
	t.Helper()
	imgOnce.Do(func() {
		dir, err := os.MkdirTemp("", "diskformat-test-")
		if err != nil {
			imgErr = err.Error()
			return
		}
		imgDir = dir
		// A t.Fatal inside leaves this message for the later tests.
		imgErr = "making the test images failed (see the first test's log)"
		makeImages(t, dir)
	})
	if imgErr != "" {
		t.Fatal(imgErr)
	}
	return imgDir
}

func makeImages(t testing.TB, dir string) {
	for _, name := range []string{"qemu-img", "xorriso", "gzip", "xz", "zstd"} {
		if _, err := exec.LookPath(name); err != nil {
			imgErr = name + " is not installed (hack/deps.sh installs it)"
			return
		}
	}
	raw := make([]byte, 16<<20)
	copy(raw[1<<20:], randomBytes(1, 2<<20))
	copy(raw[9<<20:], randomBytes(2, 512<<10))
	copy(raw[15<<20:], randomBytes(3, 64<<10))
	writeFile(t, filepath.Join(dir, "raw.img"), raw)
	writeFile(t, filepath.Join(dir, "odd.img"), randomBytes(4, 1<<20+123))
	q := func(args ...string) { tool(t, dir, "qemu-img", args...) }
	q("convert", "-f", "raw", "-O", "qcow2", "raw.img", "v3.qcow2")
	q("convert", "-f", "raw", "-O", "qcow2", "-o", "compat=0.10", "raw.img", "v2.qcow2")
	q("convert", "-c", "-f", "raw", "-O", "qcow2", "raw.img", "compressed.qcow2")
	q("create", "-f", "qcow2", "empty.qcow2", "64M")
	q("convert", "-f", "raw", "-O", "qcow2", "-o", "extended_l2=on,cluster_size=128k", "raw.img", "extl2.qcow2")
	q("convert", "-c", "-f", "raw", "-O", "qcow2", "-o", "compression_type=zstd", "raw.img", "zstd.qcow2")
	q("convert", "-f", "raw", "-O", "vdi", "-o", "static=on", "raw.img", "fixed.vdi")
	q("convert", "-f", "raw", "-O", "vmdk", "raw.img", "sparse.vmdk")
	q("convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", "raw.img", "stream.vmdk")
	writeFile(t, filepath.Join(dir, "footer.vmdk"), withFooter(t, readFile(t, filepath.Join(dir, "stream.vmdk"))))
	q("convert", "-f", "raw", "-O", "vdi", "raw.img", "disk.vdi")
	q("convert", "-f", "raw", "-O", "vpc", "raw.img", "disk.vhd")
	q("convert", "-f", "raw", "-O", "vhdx", "raw.img", "disk.vhdx")
	q("create", "-f", "qcow2", "base.qcow2", "16M")
	q("create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "overlay.qcow2")
	q("create", "-f", "qcow2", "-o", "data_file=ext.raw", "datafile.qcow2", "16M")
	q("create", "-f", "vmdk", "-o", "subformat=monolithicFlat", "flat.vmdk", "16M")
	if err := os.MkdirAll(filepath.Join(dir, "isodir", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "isodir", "sub", "data.bin"), randomBytes(5, 1<<20))
	writeFile(t, filepath.Join(dir, "isodir", "readme.txt"), []byte("hello\n"))
	tool(t, dir, "xorriso", "-as", "mkisofs", "-quiet", "-o", "disk.iso", "isodir")
	for _, name := range plainImages {
		compressAll(t, dir, name)
	}
	imgErr = ""
}

// plainImages are the valid images; each also exists as .gz, .xz, .zst.
var plainImages = []string{"raw.img", "odd.img", "v3.qcow2", "v2.qcow2", "compressed.qcow2", "empty.qcow2",
	"extl2.qcow2", "zstd.qcow2", "sparse.vmdk", "stream.vmdk", "footer.vmdk", "disk.vdi", "fixed.vdi", "disk.iso"}

// withFooter turns qemu's streamOptimized image (grain directory offset in
// the header, no footer) into the VMware layout: header saying "grain
// directory at end", then footer marker, footer and end-of-stream marker.
func withFooter(t testing.TB, b []byte) []byte {
	if len(b)%512 != 0 {
		t.Fatalf("stream.vmdk is %d bytes, not whole sectors", len(b))
	}
	footer := bytes.Clone(b[:512])
	out := bytes.Clone(b)
	binary.LittleEndian.PutUint64(out[56:], vmdkGDAtEnd)
	marker := make([]byte, 512)
	binary.LittleEndian.PutUint64(marker, 1)
	binary.LittleEndian.PutUint32(marker[12:], vmdkMarkerFooter)
	out = append(out, marker...)
	out = append(out, footer...)
	return append(out, make([]byte, 512)...)
}

func compressAll(t testing.TB, dir, name string) {
	writeFile(t, filepath.Join(dir, name+".gz"), tool(t, dir, "gzip", "-c", "-n", name))
	writeFile(t, filepath.Join(dir, name+".xz"), tool(t, dir, "xz", "-c", name))
	writeFile(t, filepath.Join(dir, name+".zst"), tool(t, dir, "zstd", "-q", "-c", name))
}

// qemuVirtualSize is what qemu-img info says of the uncompressed file.
func qemuVirtualSize(t testing.TB, dir, name string) int64 {
	var info struct {
		VirtualSize int64 `json:"virtual-size"`
	}
	if err := json.Unmarshal(tool(t, dir, "qemu-img", "info", "--output=json", name), &info); err != nil {
		t.Fatal(err)
	}
	return info.VirtualSize
}

func TestMain(m *testing.M) {
	code := m.Run()
	if imgDir != "" {
		os.RemoveAll(imgDir)
	}
	os.Exit(code)
}
