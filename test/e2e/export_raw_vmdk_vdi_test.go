package e2e

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dvcr/dvcr/test/dvcrtest"
)

// makeWritten creates an empty image of format with qemu-img and writes to
// it with qemu-io in the order given, so that its clusters, grains or
// blocks are stored out of guest order.
func makeWritten(t *testing.T, dir, name, format string, opts []string, writes ...string) string {
	t.Helper()
	qemu := dvcrtest.Tool(t, "qemu-img", "apt-get install -y qemu-utils")
	qemuIO := dvcrtest.Tool(t, "qemu-io", "apt-get install -y qemu-utils")
	path := filepath.Join(dir, name+"."+format)
	runTool(t, qemu, append(append([]string{"create", "-q", "-f", format}, opts...), path, "64M")...)
	args := []string{"-f", format}
	for _, w := range writes {
		args = append(args, "-c", w)
	}
	runTool(t, qemuIO, append(args, path)...)
	return path
}

// TestExportFormatRawVMDKVDI: --format raw converts vmdk (monolithicSparse,
// with zeroed grains, streamOptimized as qemu writes it and as VMware
// streams it, a last grain cut at the capacity) and vdi (dynamic, static),
// converted by qemu-img or written out of guest order by qemu-io, to a
// sparse file equal to `qemu-img convert -O raw`.
func TestExportFormatRawVMDKVDI(t *testing.T) {
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{})
	qemu := dvcrtest.Tool(t, "qemu-img", "apt-get install -y qemu-utils")
	dir := t.TempDir()
	random := filepath.Join(dir, "random")
	dvcrtest.WriteRandomFile(t, random, 3<<20)
	// Whole grains, high offsets first, nothing written twice (a stream
	// takes each grain once); zeros written as data and as zeros.
	writes := []string{"write -P 0x11 63M 64k", "write -s " + random + " 44M 3M", "write -z 20M 128k",
		"write -P 0 24M 64k", "write -P 0xab 40M 1M", "write -P 0xcd 1M 512k", "write -P 0x22 0 64k"}
	more := append(slices.Clone(writes), "write -z 40M 64k", "write -P 0x33 5000 3000")
	src := makeWritten(t, dir, "src", "qcow2", nil, more...)
	convert := func(name, format string, opts ...string) string {
		path := filepath.Join(dir, name+"."+format)
		runTool(t, qemu, append(append([]string{"convert", "-O", format}, opts...), src, path)...)
		return path
	}
	stream := makeWritten(t, dir, "stream", "vmdk", []string{"-o", "subformat=streamOptimized"}, writes...)
	cases := []struct {
		name, src string
		sparse    bool
	}{
		{"vmdk", convert("vmdk", "vmdk"), true},
		{"vmdk streamOptimized", convert("so", "vmdk", "-o", "subformat=streamOptimized"), true},
		{"vdi", convert("vdi", "vdi"), true},
		{"vdi static", convert("static", "vdi", "-o", "static=on"), true},
		{"vmdk written", makeWritten(t, dir, "w", "vmdk", nil, more...), true},
		{"vmdk zeroed grains", makeWritten(t, dir, "zg", "vmdk", []string{"-o", "zeroed_grain=on"}, more...), true},
		{"vmdk streamOptimized written", stream, true},
		{"vmdk VMware stream", vmwareStream(t, stream, filepath.Join(dir, "vmware.vmdk")), true},
		{"vdi written", makeWritten(t, dir, "w", "vdi", nil, more...), true},
		{"vdi odd size", oddVDI(t, makeWritten(t, dir, "odd", "vdi", nil, "write -P 0x44 63M 1M")), true},
		// 15.6 grains of random data: the last grain is compressed short.
		{"vmdk streamOptimized cut grain", dvcrtest.MakeDiskFile(t, t.TempDir(), "cut", "vmdk", "1000k", 1000<<10, "-o", "subformat=streamOptimized"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			repo := "cvi/" + strings.ToLower(strings.ReplaceAll(c.name, " ", "-"))
			dvcrtest.MustImport(t, srv, c.src, repo)
			want := filepath.Join(t.TempDir(), "want.raw")
			runTool(t, qemu, "convert", "-O", "raw", c.src, want)
			out := filepath.Join(t.TempDir(), "got.raw")
			res := dvcrtest.MustExport(t, srv.Addr, repo, out, "--format", "raw")
			assertSameFile(t, out, want)
			assertResult(t, res, out, "raw")
			if c.sparse && !isSparse(t, out) {
				t.Errorf("%s is not sparse", out)
			}
		})
	}
	// The VMware stream holds the same disk as the qemu one it was made of.
	a, b := filepath.Join(dir, "a.raw"), filepath.Join(dir, "b.raw")
	runTool(t, qemu, "convert", "-O", "raw", stream, a)
	runTool(t, qemu, "convert", "-O", "raw", cases[7].src, b)
	assertSameFile(t, a, b)
}

// oddVDI sets the disk size of a 64 MiB vdi to 1000 bytes less, as
// VBoxManage convertfromraw may write it: qemu rounds it up to a sector.
func oddVDI(t *testing.T, path string) string {
	patchFile(t, path, 0, func(b []byte) { binary.LittleEndian.PutUint64(b[0x170:], 64<<20-1000) })
	return path
}

// vmwareStream rewrites a streamOptimized vmdk as qemu writes it (grain
// directory and tables before the grains, placed by the header) the way
// VMware streams one: the grains, then each grain table and the directory
// behind metadata markers, then a footer placing the directory, the header
// saying "at the end". qemu-img reads both layouts but writes only the
// first.
func vmwareStream(t *testing.T, src, dst string) string {
	t.Helper()
	b := readFile(t, src)
	le := binary.LittleEndian
	h := bytes.Clone(b[:512])
	descOff, descSize := le.Uint64(h[28:]), le.Uint64(h[36:])
	var out bytes.Buffer
	out.Write(make([]byte, 512)) // the header, at the end
	out.Write(b[descOff*512 : (descOff+descSize)*512])
	gts := copyGrains(b, &out)
	gd := make([]byte, 4*len(gts))
	for i, gt := range gts {
		if gt != nil {
			writeMarker(&out, uint64(len(gt)+511)/512, 1)
			le.PutUint32(gd[i*4:], uint32(out.Len()/512))
			writeSectors(&out, gt)
		}
	}
	writeMarker(&out, uint64(len(gd)+511)/512, 2)
	le.PutUint64(h[56:], uint64(out.Len()/512))
	writeSectors(&out, gd)
	le.PutUint32(h[8:], le.Uint32(h[8:])&^2) // no redundant directory
	le.PutUint64(h[48:], 0)
	writeMarker(&out, 1, 3)
	out.Write(h)                 // the footer
	out.Write(make([]byte, 512)) // end of stream
	le.PutUint64(h[56:], ^uint64(0))
	file := out.Bytes()
	copy(file, h)
	if err := os.WriteFile(dst, file, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// copyGrains writes the compressed grains of b (marker and data) in the
// order b holds them, and returns b's grain tables pointing to the
// grains' new places.
func copyGrains(b []byte, out *bytes.Buffer) [][]byte {
	le := binary.LittleEndian
	capacity, grain := le.Uint64(b[12:]), le.Uint64(b[20:])
	gtes, gdOff := uint64(le.Uint32(b[44:])), le.Uint64(b[56:])
	gts := make([][]byte, (capacity+grain*gtes-1)/(grain*gtes))
	var entries []uint64 // index in the tables, as table × gtes + entry
	for i := range gts {
		if s := uint64(le.Uint32(b[gdOff*512+uint64(i)*4:])); s != 0 {
			gts[i] = bytes.Clone(b[s*512 : s*512+gtes*4])
		}
		for j := uint64(0); gts[i] != nil && j < gtes; j++ {
			if le.Uint32(gts[i][j*4:]) > 1 {
				entries = append(entries, uint64(i)*gtes+j)
			}
		}
	}
	sector := func(e uint64) uint32 { return le.Uint32(gts[e/gtes][e%gtes*4:]) }
	slices.SortFunc(entries, func(x, y uint64) int { return int(sector(x)) - int(sector(y)) })
	for _, e := range entries {
		off := uint64(sector(e)) * 512
		n := 12 + uint64(le.Uint32(b[off+8:]))
		le.PutUint32(gts[e/gtes][e%gtes*4:], uint32(out.Len()/512))
		writeSectors(out, b[off:off+n])
	}
	return gts
}

// writeSectors writes p padded to whole sectors.
func writeSectors(out *bytes.Buffer, p []byte) {
	out.Write(p)
	out.Write(make([]byte, (512-len(p)%512)%512))
}

// writeMarker writes a vmdk metadata marker sector of type typ.
func writeMarker(out *bytes.Buffer, sectors uint64, typ uint32) {
	m := make([]byte, 512)
	binary.LittleEndian.PutUint64(m, sectors)
	binary.LittleEndian.PutUint32(m[12:], typ)
	out.Write(m)
}
