package dvcrtest

import (
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/dvcr/dvcr/registry/diskimage"
)

// DiskImage is a real disk image made by qemu-img and packed in the
// importers' layout as an OCI image layout directory.
type DiskImage struct {
	Path   string // the disk file
	Layout string // OCI image layout directory
	Tag    string
	Info   diskimage.Info
	Image  *diskimage.Image
}

// OCIRef is the skopeo reference of the layout.
func (d *DiskImage) OCIRef() string { return "oci:" + d.Layout + ":" + d.Tag }

// MakeDisk creates a disk image of the given qemu-img format and virtual size
// (e.g. "qcow2", "16M") holding randomData bytes of random content written at
// its start, so that distinct calls give distinct blobs.
func MakeDisk(t testing.TB, name, format, size string, randomData int) *DiskImage {
	t.Helper()
	qemu := Tool(t, "qemu-img", "apt-get install -y qemu-utils")
	dir := t.TempDir()
	raw := filepath.Join(dir, name+".raw")
	run(t, qemu, "create", "-f", "raw", raw, size)
	if randomData > 0 {
		writeRandom(t, raw, randomData)
	}
	path := raw
	if format != "raw" {
		path = filepath.Join(dir, name+"."+format)
		run(t, qemu, "convert", "-O", format, raw, path)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	info, err := diskimage.Inspect(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	d := &DiskImage{Path: path, Layout: filepath.Join(dir, "layout"), Tag: "latest", Info: info}
	if d.Image, err = diskimage.WriteLayout(path, info, d.Layout, d.Tag); err != nil {
		t.Fatal(err)
	}
	return d
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

// Push copies a disk image to repo:tag of the server with skopeo.
func Push(t testing.TB, s *Server, d *DiskImage, repo, tag string) {
	t.Helper()
	// --preserve-digests keeps the layer uncompressed, as the importers push it.
	Skopeo(t, "copy", "--preserve-digests", "--dest-tls-verify=false", d.OCIRef(), s.Ref(repo, tag))
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}
