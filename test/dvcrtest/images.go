package dvcrtest

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/dvcr/dvcr/test/ocilayout"
)

// DiskImage is a real disk image made by qemu-img, also packed in the
// importers' layout as an OCI image layout directory (by test/ocilayout;
// TestImportMatchesLayout checks its digests are those `dvcr import` of the
// file produces).
type DiskImage struct {
	Path   string // the disk file
	Layout string // OCI image layout directory
	Tag    string
	Info   QemuInfo
	Image  *ocilayout.Image
}

// OCIRef is the skopeo reference of the layout.
func (d *DiskImage) OCIRef() string { return "oci:" + d.Layout + ":" + d.Tag }

// MakeDisk creates a disk image of the given qemu-img format and virtual size
// (e.g. "qcow2", "16M") holding randomData bytes of random content written at
// its start, so that distinct calls give distinct blobs.
func MakeDisk(t testing.TB, name, format, size string, randomData int) *DiskImage {
	t.Helper()
	path := MakeDiskFile(t, t.TempDir(), name, format, size, randomData)
	d := &DiskImage{Path: path, Layout: filepath.Join(filepath.Dir(path), "layout"), Tag: "latest", Info: Qemu(t, path)}
	var err error
	if d.Image, err = ocilayout.Write(path, d.Layout, d.Tag); err != nil {
		t.Fatal(err)
	}
	return d
}

// MakeDiskFile writes name.<format> in dir with qemu-img (converting from a
// raw file with randomData random bytes at its start); extra are options of
// qemu-img convert (e.g. "-o", "subformat=streamOptimized").
func MakeDiskFile(t testing.TB, dir, name, format, size string, randomData int, extra ...string) string {
	t.Helper()
	qemu := Tool(t, "qemu-img", "apt-get install -y qemu-utils")
	raw := filepath.Join(dir, name+".raw")
	run(t, qemu, "create", "-f", "raw", raw, size)
	if randomData > 0 {
		writeRandom(t, raw, randomData)
	}
	if format == "raw" {
		return raw
	}
	path := filepath.Join(dir, name+"."+format)
	run(t, qemu, append(append([]string{"convert", "-O", format}, extra...), raw, path)...)
	return path
}

// QemuInfo is what `qemu-img info` says of a disk file: the reference for
// formats and virtual sizes.
type QemuInfo struct {
	Format      string `json:"format"`
	VirtualSize int64  `json:"virtual-size"`
}

// Qemu runs `qemu-img info --output=json` on path.
func Qemu(t testing.TB, path string) QemuInfo {
	t.Helper()
	qemu := Tool(t, "qemu-img", "apt-get install -y qemu-utils")
	abs, err := filepath.Abs(path) // never read as a protocol prefix or an option
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, qemu, "info", "--output=json", abs).Output()
	if err != nil {
		t.Fatalf("qemu-img info %s: %v", path, err)
	}
	var info QemuInfo
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("qemu-img info %s: %v", path, err)
	}
	return info
}

// WriteRandomFile creates path with n random bytes.
func WriteRandomFile(t testing.TB, path string, n int) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	writeRandom(t, path, n)
}

func writeRandom(t testing.TB, path string, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, n)
	_, _ = rand.Read(buf)
	if _, err := f.WriteAt(buf, 0); err != nil {
		t.Fatal(err)
	}
}

// Skopeo runs skopeo with the given arguments, plain HTTP to loopback
// registries, and fails the test on error. It returns the combined output.
func Skopeo(t testing.TB, args ...string) string {
	t.Helper()
	out, err := SkopeoErr(t, args...)
	if err != nil {
		t.Fatalf("skopeo %v: %v\n%s", args, err, out)
	}
	return out
}

// SkopeoErr is Skopeo that returns the error instead of failing.
func SkopeoErr(t testing.TB, args ...string) (string, error) {
	t.Helper()
	bin := Tool(t, "skopeo", "apt-get install -y skopeo")
	full := append([]string{"--insecure-policy"}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir()) // no user registries.conf or auth
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Pull copies repo:tag from the server into a new OCI layout directory,
// keeping the layers as they are stored, and returns the directory.
func Pull(t testing.TB, s *Server, repo, tag string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pulled")
	Skopeo(t, "copy", "--preserve-digests", "--dest-oci-accept-uncompressed-layers", "--src-tls-verify=false", s.Ref(repo, tag), "oci:"+dir+":"+tag)
	return dir
}

// Push imports the disk file into repo:tag of the server with `dvcr import`.
func Push(t testing.TB, s *Server, d *DiskImage, repo, tag string) {
	t.Helper()
	MustImport(t, s, d.Path, repo, "--tag", tag)
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}
