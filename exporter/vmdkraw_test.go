package exporter

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// testRanges reads a disk file held in memory, as readRange does.
func testRanges(b []byte) rangeReader {
	return func(_ context.Context, off, n int64) ([]byte, error) {
		if off < 0 || n < 0 || off+n > int64(len(b)) {
			return nil, fmt.Errorf("%w: %d bytes at %d are past the end of the file", ErrUnsupported, n, off)
		}
		return bytes.Clone(b[off : off+n]), nil
	}
}

// testToRaw maps and converts a disk file held in memory; the result has
// the virtual size.
func testToRaw(mapFile mapper, file []byte) ([]byte, error) {
	m, err := mapFile(context.Background(), testRanges(file), int64(len(file)))
	if err != nil {
		return nil, err
	}
	out := &memWriter{}
	if err := m.convert(bytes.NewReader(file), int64(len(file)), out); err != nil {
		return nil, err
	}
	return append(out.b, make([]byte, m.virtualSize-int64(len(out.b)))...), nil
}

// vmdkFile builds a vmdk sparse extent in memory, its grains in the file
// in the order listed, so that the mapper is tested without qemu on the
// layouts qemu does not write (footer, zeroed grains in a stream).
type vmdkFile struct {
	capacity, grain int64 // sectors
	gtes            int64
	compressed      bool // streamOptimized: zlib grains behind grain markers
	atEnd           bool // grain tables, directory and footer after the grains
	flags           uint32
	descriptor      string
	grains          []testGrain
}

// testGrain is grain index of the disk; nil data is a zeroed grain.
type testGrain struct {
	index int64
	data  []byte
}

// sectorFile is a file written sector by sector.
type sectorFile []byte

// put writes b at sector s and returns the sectors it takes.
func (f *sectorFile) put(s int64, b []byte) int64 {
	n := (int64(len(b)) + 511) / 512
	if end := (s + n) * 512; end > int64(len(*f)) {
		*f = append(*f, make([]byte, end-int64(len(*f)))...)
	}
	copy((*f)[s*512:], b)
	return n
}

func (v vmdkFile) build() []byte {
	var f sectorFile
	gdEntries := (v.capacity + v.grain*v.gtes - 1) / (v.grain * v.gtes)
	gtSectors, gdSectors := (v.gtes*4+511)/512, (gdEntries*4+511)/512
	next := int64(2) // header, descriptor
	if !v.atEnd {
		next += gdSectors + gdEntries*gtSectors
	}
	gts := make([]byte, gdEntries*v.gtes*4)
	for _, g := range v.grains {
		e := int64(1)
		if g.data != nil {
			e = next
			next += f.put(next, v.stored(g))
		}
		binary.LittleEndian.PutUint32(gts[g.index*4:], uint32(e))
	}
	gd := make([]byte, gdEntries*4)
	for i := range gdEntries {
		s := 2 + gdSectors + i*gtSectors
		if v.atEnd { // each table behind a metadata marker
			f.put(next, vmdkMarker(uint64(gtSectors), 0, 1))
			s, next = next+1, next+1+gtSectors
		}
		binary.LittleEndian.PutUint32(gd[i*4:], uint32(s))
		f.put(s, gts[i*v.gtes*4:(i+1)*v.gtes*4])
	}
	gdAt := int64(2)
	if v.atEnd {
		f.put(next, vmdkMarker(uint64(gdSectors), 0, 2))
		gdAt, next = next+1, next+1+gdSectors
		f.put(next, vmdkMarker(1, 0, vmdkMarkerFooter))
		f.put(next+1, v.header(uint64(gdAt)))
		f.put(next+2, make([]byte, 512)) // end of stream
	}
	f.put(gdAt, gd)
	f.put(0, v.header(map[bool]uint64{true: vmdkGDAtEnd, false: 2}[v.atEnd]))
	f.put(1, []byte(v.descriptor))
	return f
}

func (v vmdkFile) header(gd uint64) []byte {
	h := make([]byte, 512)
	le := binary.LittleEndian
	copy(h, vmdkMagic)
	version, flags := uint32(1), v.flags|1
	if v.compressed {
		version, flags = 3, flags|1<<16|vmdkFlagMarkers
		le.PutUint16(h[77:], vmdkDeflate)
	}
	le.PutUint32(h[4:], version)
	le.PutUint32(h[8:], flags)
	le.PutUint64(h[12:], uint64(v.capacity))
	le.PutUint64(h[20:], uint64(v.grain))
	le.PutUint64(h[28:], 1)
	le.PutUint64(h[36:], 1)
	le.PutUint32(h[44:], uint32(v.gtes))
	le.PutUint64(h[56:], gd)
	copy(h[73:], "\n \r\n")
	return h
}

// stored is a grain as written: whole, or compressed behind its marker.
func (v vmdkFile) stored(g testGrain) []byte {
	if !v.compressed {
		return g.data
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(g.data)
	zw.Close()
	return append(vmdkMarker(uint64(g.index*v.grain), uint32(z.Len()), -1), z.Bytes()...)
}

// vmdkMarker is a grain marker (typ < 0) or a metadata marker sector.
func vmdkMarker(val uint64, size uint32, typ int) []byte {
	n := 12
	if typ >= 0 {
		n = 512
	}
	b := make([]byte, n)
	binary.LittleEndian.PutUint64(b, val)
	binary.LittleEndian.PutUint32(b[8:], size)
	if typ >= 0 {
		binary.LittleEndian.PutUint32(b[12:], uint32(typ))
	}
	return b
}

// want is the raw disk: each grain's data at its place, cut at the
// capacity.
func (v vmdkFile) want() []byte {
	raw := make([]byte, v.capacity*512)
	for _, g := range v.grains {
		copy(raw[g.index*v.grain*512:], g.data)
	}
	return raw
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7/5)
	}
	return b
}

// testVMDK: 4 KiB grains, 4 per table, 13 grains (the last one cut at a
// capacity of 50 sectors); grains out of guest order, one all zeros, one
// zeroed, the rest unallocated.
func testVMDK(compressed, atEnd bool) vmdkFile {
	return vmdkFile{
		capacity: 100, grain: 8, gtes: 4, compressed: compressed, atEnd: atEnd, flags: vmdkFlagZeroGrain,
		descriptor: "# Disk DescriptorFile\nversion=1\nparentCID=ffffffff\ncreateType=\"monolithicSparse\"\n",
		grains: []testGrain{
			{9, pattern(4096, 9)}, {0, pattern(4096, 1)}, {12, pattern(2048, 12)}, {5, nil},
			{4, pattern(4096, 4)}, {2, make([]byte, 4096)},
		},
	}
}

// TestVMDKToRaw: monolithicSparse and streamOptimized, with the grain
// directory in the header or in a footer, convert to the grains at their
// places; the last grain of a stream may inflate short of a grain, at the
// capacity, as qemu writes it.
func TestVMDKToRaw(t *testing.T) {
	for _, c := range []struct {
		name              string
		compressed, atEnd bool
	}{
		{"monolithicSparse", false, false},
		{"streamOptimized", true, false},
		{"streamOptimized footer", true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := testVMDK(c.compressed, c.atEnd)
			got, err := testToRaw(mapVMDK, v.build())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, v.want()) {
				t.Errorf("the raw disk differs")
			}
		})
	}
}

// TestMapVMDKRefuses: headers, tables and grains a conversion cannot use
// are refused with what is wrong, before anything is written.
func TestMapVMDKRefuses(t *testing.T) {
	le := binary.LittleEndian
	for _, c := range []struct {
		name, want string
		atEnd      bool
		edit       func(f []byte) []byte
	}{
		{"short", "a vmdk of 100 bytes has no header", false, func(f []byte) []byte { return f[:100] }},
		{"magic", "not a vmdk sparse extent header", false, func(f []byte) []byte { f[0] = 'C'; return f }},
		{"version", "vmdk version 4", false, func(f []byte) []byte { le.PutUint32(f[4:], 4); return f }},
		{"grain 0", "vmdk grain of 0 sectors", false, func(f []byte) []byte { le.PutUint64(f[20:], 0); return f }},
		{"grain huge", "vmdk grain of 131072 sectors", false, func(f []byte) []byte { le.PutUint64(f[20:], 1<<17); return f }},
		{"no tables", "grain tables of 0 entries", false, func(f []byte) []byte { le.PutUint32(f[44:], 0); return f }},
		{"capacity 0", "vmdk capacity of 0 sectors", false, func(f []byte) []byte { le.PutUint64(f[12:], 0); return f }},
		{"capacity absurd", "vmdk grain directory of 140737488355328 bytes", false, func(f []byte) []byte { le.PutUint64(f[12:], 1<<50); return f }},
		{"compression", "compression algorithm 2", false, func(f []byte) []byte { le.PutUint16(f[77:], 2); return f }},
		{"no markers", "compressed grains without grain markers", false, func(f []byte) []byte { le.PutUint16(f[77:], 1); return f }},
		{"directory past the end", "grain directory of 16 bytes at sector 9999 is past the end", false, func(f []byte) []byte { le.PutUint64(f[56:], 9999); return f }},
		{"directory at 0", "the vmdk has no grain directory", false, func(f []byte) []byte { le.PutUint64(f[56:], 0); return f }},
		{"table past the end", "grain table 1 at sector 70000 is past the end", false, func(f []byte) []byte { le.PutUint32(f[1024+4:], 70000); return f }},
		{"grain past the end", "grain 1 at sector 4000000000 is past the end", false, func(f []byte) []byte { le.PutUint32(f[3*512+4:], 4e9); return f }},
		{"grains twice", "list more grains than its", false, func(f []byte) []byte {
			for i := range 16 { // every table entry the same grain
				le.PutUint32(f[(3+i/4)*512+i%4*4:], 7)
			}
			return f[:15*512]
		}},
		{"tables twice", "the vmdk grain directory lists more grain tables than its", false, func(f []byte) []byte {
			// A directory of 4096 entries that all place one empty table
			// (the sector appended): 2 MiB of tables in a file of 38 KiB.
			gd := len(f)/512 + 1
			f = append(f, make([]byte, 512+4096*4)...)
			for i := range 4096 {
				le.PutUint32(f[gd*512+i*4:], uint32(gd-1))
			}
			le.PutUint64(f[12:], 4096*4*8) // 4096 tables of 4 grains of 8 sectors
			le.PutUint64(f[56:], uint64(gd))
			return f
		}},
		{"delta", `the vmdk is a delta of "base.vmdk"`, false, func(f []byte) []byte { copy(f[512:], "parentFileNameHint=\"base.vmdk\"\n"); return f }},
		{"descriptor past the end", "embedded descriptor of 1 sectors at sector 4096 does not fit", false, func(f []byte) []byte { le.PutUint64(f[28:], 4096); return f }},
		{"footer missing", "does not end with footer and end-of-stream markers", true, func(f []byte) []byte { return append(f, make([]byte, 512)...) }},
		{"footer cut", "its 1000 bytes cannot end with one", true, func(f []byte) []byte { return f[:1000] }},
		{"footer without directory", "the vmdk footer does not place the grain directory", true, func(f []byte) []byte { le.PutUint64(f[len(f)-1024+56:], vmdkGDAtEnd); return f }},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := c.edit(testVMDK(c.atEnd, c.atEnd).build())
			_, err := mapVMDK(context.Background(), testRanges(f), int64(len(f)))
			if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
}

// TestGrainInflater: a compressed grain must say where it belongs, fit
// what qemu reads, and inflate to the grain (less only at the capacity).
func TestGrainInflater(t *testing.T) {
	z := func(b []byte) []byte {
		var buf bytes.Buffer
		zw := zlib.NewWriter(&buf)
		zw.Write(b)
		zw.Close()
		return buf.Bytes()
	}
	grain := func(lba uint64, data []byte) []byte {
		return append(vmdkMarker(lba, uint32(len(data)), -1), data...)
	}
	full := z(pattern(4096, 3))
	bad := bytes.Clone(full)
	bad[len(bad)-1] ^= 1 // the Adler-32 checksum
	for _, c := range []struct {
		name string
		src  []byte
		dst  int
		want string
	}{
		{"full", grain(8, full), 4096, ""},
		{"full grain cut at the capacity", grain(8, full), 1024, ""},
		{"short at the capacity", grain(8, z(pattern(1024, 3))), 1024, ""},
		{"short", grain(8, z(pattern(1024, 3))), 4096, "inflating the grain to 4096 bytes: unexpected EOF"},
		{"long", grain(8, z(pattern(5000, 3))), 4096, "inflates to more than 4096 bytes"},
		{"elsewhere", grain(16, full), 4096, "holds guest sector 16, the grain table says 8"},
		{"marker cut", grain(8, nil)[:10], 4096, "grain marker is cut"},
		{"size 0", grain(8, nil), 4096, "gives 0 bytes"},
		{"size past the end", grain(8, full)[:40], 4096, "more than the file or a grain holds"},
		{"not zlib", grain(8, []byte("plain text data")), 4096, "reading the zlib header: zlib: invalid header"},
		{"checksum", grain(8, bad), 4096, "checksum"},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := &grainInflater{grain: 4096}
			dst := make([]byte, c.dst)
			err := in.grainAt(8)(dst, c.src)
			if c.want == "" && (err != nil || !bytes.Equal(dst, pattern(4096, 3)[:c.dst])) {
				t.Errorf("error %v, or the grain differs", err)
			}
			if c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
}

// TestReadTables: tables close to each other share a request; each piece
// is the bytes at its offset, whatever the order of the offsets.
func TestReadTables(t *testing.T) {
	file := pattern(vmdkTableSpan+2*vmdkTableGap, 0)
	for _, c := range []struct {
		name     string
		offs     []int64
		requests int
	}{
		{"none", nil, 0},
		{"side by side", []int64{0, 2048, 4096}, 1},
		{"out of order, twice", []int64{4096, 0, 4096}, 1},
		{"a gap", []int64{0, 2048 + vmdkTableGap + 1}, 2},
		{"past the span", []int64{0, vmdkTableSpan}, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			requests := 0
			read := func(ctx context.Context, off, n int64) ([]byte, error) {
				requests++
				return testRanges(file)(ctx, off, n)
			}
			got, err := readTables(context.Background(), read, c.offs, 2048)
			if err != nil || requests != c.requests {
				t.Fatalf("%d requests, error %v", requests, err)
			}
			for i, off := range c.offs {
				if !bytes.Equal(got[i], file[off:off+2048]) {
					t.Errorf("piece %d at %d differs", i, off)
				}
			}
		})
	}
}

// FuzzMapVMDK: whatever the file, mapping and converting it ends in an
// error or a map, never a panic.
func FuzzMapVMDK(f *testing.F) {
	for _, v := range []vmdkFile{testVMDK(false, false), testVMDK(true, false), testVMDK(true, true)} {
		f.Add(v.build())
	}
	f.Fuzz(func(t *testing.T, file []byte) { fuzzConvert(mapVMDK, file) })
}

// fuzzConvert maps and converts file, writing nowhere.
func fuzzConvert(mapFile mapper, file []byte) {
	m, err := mapFile(context.Background(), testRanges(file), int64(len(file)))
	if err == nil {
		m.convert(bytes.NewReader(file), int64(len(file)), discardWriter{})
	}
}

type discardWriter struct{}

func (discardWriter) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }
