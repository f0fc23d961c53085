package importer

import (
	"archive/tar"
	"bytes"
	"io"
	"testing"
)

// TestTarLayout: header + data + trailer is a valid tar holding exactly
// disk/<name>, padded to the block, for sizes around block boundaries.
func TestTarLayout(t *testing.T) {
	for _, size := range []int64{0, 1, 511, 512, 513, 4096, 10000} {
		header, err := tarHeader("disk.qcow2", size)
		if err != nil {
			t.Fatal(err)
		}
		data := bytes.Repeat([]byte{0xa5}, int(size))
		layer := append(append(append([]byte{}, header...), data...), tarTrailer(size)...)
		if int64(len(layer)) != layerSize(header, size) || len(layer)%blockSize != 0 {
			t.Errorf("size %d: layer of %d bytes, layerSize %d", size, len(layer), layerSize(header, size))
		}
		tr := tar.NewReader(bytes.NewReader(layer))
		hdr, err := tr.Next()
		if err != nil || hdr.Name != "disk/disk.qcow2" || hdr.Size != size || hdr.Typeflag != tar.TypeReg {
			t.Fatalf("size %d: entry %+v, %v", size, hdr, err)
		}
		got, _ := io.ReadAll(tr)
		if !bytes.Equal(got, data) {
			t.Errorf("size %d: data differs", size)
		}
		if _, err := tr.Next(); err != io.EOF {
			t.Errorf("size %d: after the entry: %v, want EOF", size, err)
		}
	}
}

// TestTarHeaderLargeFile: sizes past USTAR's 8 GiB limit are carried by PAX.
func TestTarHeaderLargeFile(t *testing.T) {
	const size = 9 << 30
	header, err := tarHeader("big.raw", size)
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := tar.NewReader(bytes.NewReader(header)).Next()
	if err != nil || hdr.Size != size {
		t.Fatalf("9 GiB header: %+v, %v", hdr, err)
	}
}
