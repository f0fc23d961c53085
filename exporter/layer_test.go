package exporter

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dvcr/dvcr/test/ocilayout"
)

// header is the layer's header as the importer writes it.
func header(t *testing.T, name string, size int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size, ModTime: time.Unix(0, 0), Format: tar.FormatPAX})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestReadEntryOffset: the count of header bytes is the data's offset, for
// USTAR headers, PAX records (long names, sizes past 8 GiB) and the sizes
// around a block.
func TestReadEntryOffset(t *testing.T) {
	long := strings.Repeat("n", 150) + ".qcow2"
	for _, c := range []struct {
		name string
		size int64
	}{
		{"a.qcow2", 0}, {"a.qcow2", 1}, {"a.raw", 511}, {"a.raw", 512}, {"a.raw", 513},
		{long, 1 << 20}, {"big.raw", 8<<30 + 1}, {"ünïcode.iso", 4096},
	} {
		hdr := header(t, "disk/"+c.name, c.size)
		// Data follows the header: readEntry must not read into it.
		layer := io.MultiReader(bytes.NewReader(hdr), strings.NewReader("DATA"))
		e, err := readEntry(layer)
		if err != nil {
			t.Fatalf("%s %d: %v", c.name, c.size, err)
		}
		if e.Name != c.name || e.Size != c.size || e.DataOffset() != int64(len(hdr)) {
			t.Errorf("%s %d: entry %+v, want header of %d bytes", c.name, c.size, e, len(hdr))
		}
		rest, _ := io.ReadAll(layer)
		if string(rest) != "DATA" {
			t.Errorf("%s %d: readEntry read into the data (left %q)", c.name, c.size, rest)
		}
		if pad := (512 - c.size%512) % 512; e.MinLayerSize() != int64(len(hdr))+c.size+pad {
			t.Errorf("%s %d: min layer size %d", c.name, c.size, e.MinLayerSize())
		}
	}
}

// TestReadEntryLayout: the layer the importer writes for a file is read
// back at the right offset, with a zero tail; entries outside disk/ are
// refused.
func TestReadEntryLayout(t *testing.T) {
	dir := t.TempDir()
	disk := filepath.Join(dir, "d.img")
	want := bytes.Repeat([]byte("0123456789abcdef"), 70000)
	if err := os.WriteFile(disk, want, 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := ocilayout.Write(disk, filepath.Join(dir, "layout"), "latest")
	if err != nil {
		t.Fatal(err)
	}
	layer, err := os.ReadFile(filepath.Join(dir, "layout", "blobs", "sha256", img.Layer.Digest.Encoded()))
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(layer)
	e, err := readEntry(r)
	if err != nil || e.Name != "d.img" || e.Size != int64(len(want)) {
		t.Fatalf("entry %+v, %v", e, err)
	}
	if got := layer[e.DataOffset() : e.DataOffset()+e.Size]; !bytes.Equal(got, want) {
		t.Error("the bytes at the data offset are not the file")
	}
	if e.MinLayerSize() > int64(len(layer)) {
		t.Errorf("min layer size %d > layer %d", e.MinLayerSize(), len(layer))
	}
	if err := zeroTail(bytes.NewReader(layer[e.DataOffset()+e.Size:])); err != nil {
		t.Errorf("tail: %v", err)
	}
	for _, name := range []string{"etc/passwd", "disk/sub/x.img", "x.img", "../disk/x"} {
		if _, err := readEntry(bytes.NewReader(header(t, name, 10))); !errors.Is(err, ErrNotDiskImage) {
			t.Errorf("entry %q: %v, want ErrNotDiskImage", name, err)
		}
	}
	second := append(make([]byte, 512), header(t, "disk/b", 1)...)
	if err := zeroTail(bytes.NewReader(second)); !errors.Is(err, ErrNotDiskImage) {
		t.Errorf("a second entry in the tail: %v", err)
	}
}

// TestOutputErrors: a full device is named with the count; --continue on a
// file larger than the image is refused.
func TestOutputErrors(t *testing.T) {
	o, err := openOutput("/dev/full", "x", false, nil, 100)
	if err != nil {
		t.Fatal(err)
	}
	_, err = o.Write(make([]byte, 10))
	if err == nil || err.Error() != "writing /dev/full: no space left on device: 0 bytes written of 100" {
		t.Errorf("write to /dev/full: %v", err)
	}
	o.abandon()
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, make([]byte, 20), 0o644); err != nil {
		t.Fatal(err)
	}
	o, err = openOutput(path, "x", true, nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer o.abandon()
	if _, err := o.resume(10, io.Discard); err == nil || !strings.Contains(err.Error(), "holds 20 bytes, more than the image's disk file (10 bytes)") {
		t.Errorf("resume of a larger file: %v", err)
	}
}

func TestDecompressedName(t *testing.T) {
	for in, want := range map[[2]string]string{
		{"a.qcow2.xz", compXZ}: "a.qcow2", {"a.img.gz", compGzip}: "a.img",
		{"a.raw.zst", compZstd}: "a.raw", {"blob", compGzip}: "blob.raw", {".gz", compGzip}: ".gz.raw",
	} {
		if got := decompressedName(in[0], in[1]); got != want {
			t.Errorf("%v: %q, want %q", in, got, want)
		}
	}
}
