package diskformat

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Small valid images built in code: fuzz seeds, and a check that the
// parsers accept hand-made layouts, not only qemu-img's.

// qcow2Seed: v3, 512-byte clusters, 64 KiB virtual; refcount table at 512,
// refcount block at 1024, L1 at 1536 (2 entries), L2 at 2048, one data
// cluster at 2560.
func qcow2Seed() []byte {
	b := make([]byte, 3072)
	be := binary.BigEndian
	copy(b, "QFI\xfb")
	be.PutUint32(b[4:], 3)
	be.PutUint32(b[20:], 9)
	be.PutUint64(b[24:], 64<<10)
	be.PutUint32(b[36:], 2)
	be.PutUint64(b[40:], 1536)
	be.PutUint64(b[48:], 512)
	be.PutUint32(b[56:], 1)
	be.PutUint32(b[96:], 4)
	be.PutUint32(b[100:], 104)
	be.PutUint64(b[512:], 1024)
	be.PutUint64(b[1536:], 2048|1<<63)
	be.PutUint64(b[2048:], 2560|1<<63)
	copy(b[2560:], "data")
	return b
}

// vmdkSeed: monolithicSparse, 128 sectors, grains of 8 sectors, 16 grain
// table entries; descriptor at sector 1, GD at 2, GT at 3, a grain at 4.
func vmdkSeed() []byte {
	b := make([]byte, 12*512)
	le := binary.LittleEndian
	copy(b, "KDMV")
	le.PutUint32(b[4:], 1)
	le.PutUint32(b[8:], 3)
	le.PutUint64(b[12:], 128)
	le.PutUint64(b[20:], 8)
	le.PutUint64(b[28:], 1)
	le.PutUint64(b[36:], 1)
	le.PutUint32(b[44:], 16)
	le.PutUint64(b[56:], 2)
	le.PutUint64(b[64:], 4)
	copy(b[73:], "\n \r\n")
	copy(b[512:], "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n"+
		"createType=\"monolithicSparse\"\nRW 128 SPARSE \"seed.vmdk\"\n")
	le.PutUint32(b[1024:], 3)
	le.PutUint32(b[1536:], 4)
	return b
}

// vdiSeed: dynamic, 4 blocks of 512 bytes, one allocated.
func vdiSeed() []byte {
	b := make([]byte, 0x600)
	le := binary.LittleEndian
	copy(b, "<<< Oracle VM VirtualBox Disk Image >>>\n")
	le.PutUint32(b[0x40:], 0xbeda107f)
	le.PutUint32(b[0x44:], 0x00010001)
	le.PutUint32(b[0x48:], 0x190)
	le.PutUint32(b[0x4c:], vdiTypeDynamic)
	le.PutUint32(b[0x154:], 0x200)
	le.PutUint32(b[0x158:], 0x400)
	le.PutUint32(b[0x168:], 512)
	le.PutUint64(b[0x170:], 2048)
	le.PutUint32(b[0x178:], 512)
	le.PutUint32(b[0x180:], 4)
	le.PutUint32(b[0x184:], 1)
	for i, v := range []uint32{0, vdiUnallocated, vdiUnallocated, vdiZeroBlock} {
		le.PutUint32(b[0x200+4*i:], v)
	}
	return b
}

// isoSeed: 18 sectors, a primary volume descriptor and a terminator.
func isoSeed() []byte {
	b := make([]byte, 18*isoSector)
	pvd := b[16*isoSector:]
	pvd[0] = isoPVD
	copy(pvd[1:], "CD001")
	binary.LittleEndian.PutUint32(pvd[80:], 18)
	binary.BigEndian.PutUint32(pvd[84:], 18)
	binary.LittleEndian.PutUint16(pvd[128:], isoSector)
	binary.BigEndian.PutUint16(pvd[130:], isoSector)
	term := b[17*isoSector:]
	term[0] = isoTerminal
	copy(term[1:], "CD001")
	return b
}

func gzipOf(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.Bytes()
}

func xzOf(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := xz.NewWriter(&buf)
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.Bytes()
}

func zstdOf(b []byte) []byte {
	e, _ := zstd.NewWriter(nil)
	return e.EncodeAll(b, nil)
}

func TestSeeds(t *testing.T) {
	raw := append(make([]byte, 100<<10), randomBytes(9, 40<<10)...)
	tests := []struct {
		name string
		data []byte
		want Info
	}{
		{"qcow2", qcow2Seed(), Info{Format: QCOW2, VirtualSize: 64 << 10}},
		{"vmdk", vmdkSeed(), Info{Format: VMDK, VirtualSize: 128 * 512}},
		{"vdi", vdiSeed(), Info{Format: VDI, VirtualSize: 2048}},
		{"iso", isoSeed(), Info{Format: ISO, VirtualSize: 18 * isoSector, CDROM: true}},
		{"raw", raw, Info{Format: Raw, VirtualSize: int64(len(raw))}},
		{"qcow2.gz", gzipOf(qcow2Seed()), Info{Format: QCOW2, Compression: Gzip, VirtualSize: 64 << 10}},
		{"raw.xz", xzOf(raw), Info{Format: Raw, Compression: XZ, VirtualSize: int64(len(raw))}},
		{"raw.xz.xz-concat", append(append(xzOf(raw), 0, 0, 0, 0), xzOf(raw[:1000])...),
			Info{Format: Raw, Compression: XZ, VirtualSize: sectorCeil(int64(len(raw)) + 1000)}},
		{"iso.xz", xzOf(isoSeed()), Info{Format: ISO, Compression: XZ, VirtualSize: 18 * isoSector, CDROM: true}},
		{"vdi.zst", zstdOf(vdiSeed()), Info{Format: VDI, Compression: Zstd, VirtualSize: 2048}},
		{"small raw", []byte("hello"), Info{Format: Raw, VirtualSize: 512}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.want.SourceSize = int64(len(tc.data))
			for _, chunk := range []int{1, 3, 100, 1 << 20} {
				got, err := feedChunks(tc.data, chunk)
				if err != nil || got != tc.want {
					t.Fatalf("chunk %d: got %+v, %v; want %+v", chunk, got, err, tc.want)
				}
			}
		})
	}
}
