package exporter

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// vdiFile builds a vdi 1.1 in memory: a header, the block map at 512 and
// the stored blocks after it, in the order listed.
type vdiFile struct {
	diskSize  uint64
	blockSize uint32
	bmap      []uint32
	stored    [][]byte // block k of the data; shorter is padded with zeros
}

func (v vdiFile) build() []byte {
	le := binary.LittleEndian
	offData := 512 + (len(v.bmap)*4+511)&^511
	f := make([]byte, offData+len(v.stored)*int(v.blockSize))
	copy(f, "<<< QEMU VM Virtual Disk Image >>>\n")
	for off, val := range map[int]uint32{
		0x40: vdiSignature, 0x44: vdiVersion11, 0x48: 0x180, 0x4c: vdiTypeDynamic, 0x154: 512,
		0x158: uint32(offData), 0x168: 512, 0x178: v.blockSize, 0x180: uint32(len(v.bmap)), 0x184: uint32(len(v.stored)),
	} {
		le.PutUint32(f[off:], val)
	}
	le.PutUint64(f[0x170:], v.diskSize)
	for i, e := range v.bmap {
		le.PutUint32(f[512+i*4:], e)
	}
	for k, b := range v.stored {
		copy(f[offData+k*int(v.blockSize):], b)
	}
	return f
}

// testVDI: 4 KiB blocks, 6 of them for a disk of 22000 bytes (qemu rounds
// it up to 22016), a 7th past the disk; the map points to the blocks out
// of order, one block twice, one all zeros; the others are a zero block
// and an unallocated one.
func testVDI() vdiFile {
	return vdiFile{
		diskSize: 22000, blockSize: 4096,
		bmap:   []uint32{2, 1, 0, vdiFree, 0xffffffff, 0, 3},
		stored: [][]byte{pattern(4096, 1), make([]byte, 4096), pattern(4096, 3), pattern(4096, 4)},
	}
}

func TestVDIToRaw(t *testing.T) {
	want := make([]byte, 22016)
	copy(want[0:], pattern(4096, 3))
	copy(want[8192:], pattern(4096, 1))
	copy(want[20480:], pattern(4096, 1))
	got, err := testToRaw(mapVDI, testVDI().build())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the raw disk differs")
	}
	static := vdiFile{diskSize: 8192, blockSize: 4096, bmap: []uint32{0, 1}, stored: [][]byte{pattern(4096, 5), nil}}
	f := static.build()
	binary.LittleEndian.PutUint32(f[0x4c:], vdiTypeFixed)
	if got, err := testToRaw(mapVDI, f); err != nil || !bytes.Equal(got, append(pattern(4096, 5), make([]byte, 4096)...)) {
		t.Errorf("fixed: error %v, or the raw disk differs", err)
	}
}

// TestMapVDIRefuses: headers and maps a conversion cannot use are refused
// with what is wrong, before anything is written.
func TestMapVDIRefuses(t *testing.T) {
	le := binary.LittleEndian
	put32 := func(off int, v uint32) func(f []byte) []byte {
		return func(f []byte) []byte { le.PutUint32(f[off:], v); return f }
	}
	for _, c := range []struct {
		name, want string
		edit       func(f []byte) []byte
	}{
		{"short", "a vdi of 300 bytes has no header", func(f []byte) []byte { return f[:300] }},
		{"signature", "not a vdi header (signature 0xbeda1070)", put32(0x40, 0xbeda1070)},
		{"version 1.0", "vdi version 1.0 (only 1.1)", put32(0x44, 0x00010000)},
		{"differencing", "vdi image type 4", put32(0x4c, 4)},
		{"parent", "the vdi has a parent image", func(f []byte) []byte { f[0x1b8] = 1; return f }},
		{"sector size", "vdi sector size 4096", put32(0x168, 4096)},
		{"block size", "vdi block size 3000", put32(0x178, 3000)},
		{"block huge", "vdi block size 1073741824", put32(0x178, 1<<30)},
		{"block extra", "with 512 extra bytes", put32(0x17c, 512)},
		{"unaligned map", "vdi block map at 520 or data at", put32(0x154, 520)},
		{"disk larger than its blocks", "vdi disk size 29184 is larger than its 7 blocks of 4096 bytes", func(f []byte) []byte {
			le.PutUint64(f[0x170:], 28672+1)
			return f
		}},
		{"disk absurd", "vdi disk size 18446744073709551615", func(f []byte) []byte { le.PutUint64(f[0x170:], ^uint64(0)); return f }},
		{"map absurd", "vdi block map of 4294967292 bytes", func(f []byte) []byte {
			le.PutUint64(f[0x170:], 0x3fffffff<<12)
			return put32(0x180, 0xffffffff)(f)
		}},
		{"map past the end", "vdi block map of 24 bytes at 32768 is past the end", put32(0x154, 32768)},
		{"block past the end", "vdi block 5 is stored at 1049600, past the end", put32(512+5*4, 256)},
		{"blocks twice", "the vdi block map lists more blocks than its", func(f []byte) []byte {
			for i := range 7 {
				le.PutUint32(f[512+i*4:], 0)
			}
			return f[:1024+4096]
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := c.edit(testVDI().build())
			_, err := mapVDI(context.Background(), testRanges(f), int64(len(f)))
			if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
}

// FuzzMapVDI: whatever the file, mapping and converting it ends in an
// error or a map, never a panic.
func FuzzMapVDI(f *testing.F) {
	f.Add(testVDI().build())
	f.Fuzz(func(t *testing.T, file []byte) { fuzzConvert(mapVDI, file) })
}
