package exporter

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// qemuSparseSource is a raw disk of 64 GiB, holes but for four pieces, one
// across the 32 MiB a grain table covers: the grain tables qemu writes
// for it (2048 of them) take more of the vmdk than the grains.
func qemuSparseSource(t *testing.T, dir string) string {
	path := filepath.Join(dir, "sparse.raw")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const size = 64 << 30
	for _, at := range []int64{0, 1<<30 + 4096, 33<<20 - 1536, size - 2048} {
		if _, err := f.WriteAt(clusterData(3000, int(at%97)), at); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestQemuVMDKToRaw: the vmdk qemu-img writes (monolithicSparse and
// streamOptimized, of a small disk and of a large sparse one) are not
// refused by the bound on what the map lists (grain tables and grains),
// and convert equal to their source.
func TestQemuVMDKToRaw(t *testing.T) {
	qemu := qemuTool(t, "qemu-img")
	dir := t.TempDir()
	small, sparse := qemuSource(t, dir), qemuSparseSource(t, dir)
	stream := []string{"-o", "subformat=streamOptimized"}
	for _, c := range []struct {
		name, src string
		opts      []string
	}{
		{"monolithicSparse", small, nil},
		{"streamOptimized", small, stream},
		{"monolithicSparse 64G", sparse, nil},
		{"streamOptimized 64G", sparse, stream},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "disk.vmdk")
			runQemu(t, qemu, append(append([]string{"convert", "-O", "vmdk"}, c.opts...), c.src, img)...)
			got := vmdkToRawFile(t, img)
			runQemu(t, qemu, "compare", "-f", "raw", "-F", "raw", c.src, got)
		})
	}
}

// vmdkToRawFile converts the vmdk at img to a sparse raw file of its
// virtual size and returns the file's path.
func vmdkToRawFile(t *testing.T, img string) string {
	t.Helper()
	file, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	size := int64(len(file))
	m, err := mapVMDK(context.Background(), testRanges(file), size)
	if err != nil {
		t.Fatalf("%d-byte file: %v", size, err)
	}
	path := filepath.Join(t.TempDir(), "got.raw")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := m.convert(bytes.NewReader(file), size, out); err != nil {
		t.Fatal(err)
	}
	if err := out.Truncate(m.virtualSize); err != nil {
		t.Fatal(err)
	}
	return path
}
