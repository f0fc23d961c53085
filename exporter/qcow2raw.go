package exporter

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zstd"
)

// qcow2 fields used to convert to raw (big-endian, offsets in the header).
const (
	qcowMagic        = "QFI\xfb"
	qcowHeaderLen    = 104                // the shortest v3 header
	qcowHeaderRead   = 112                // what qemu writes: up to the compression type and its padding
	qcowCompTypeOff  = 104                // v3 header byte: the compression type, when header_length covers it
	qcowOffsetMask   = 0x00fffffffffffe00 // bits 9-55 of L1 and standard L2 entries
	qcowCompressed   = 1 << 62            // L2: a compressed cluster
	qcowZeroFlag     = 1                  // L2 (v3): the cluster reads as zeros
	qcowMaxL1Entries = 32 << 20 / 8       // qemu's own limit on the L1 table
	qcowSectorSize   = 512                // the unit of a compressed cluster's length
)

// qcow2 incompatible feature bits (header byte 72).
const (
	qcowDirtyBit    = 1 << 0 // the refcounts may be stale: no matter to a reader
	qcowCorruptBit  = 1 << 1
	qcowDataFileBit = 1 << 2
	qcowCompTypeBit = 1 << 3 // compressed clusters use the header's compression type
	qcowExtL2Bit    = 1 << 4
)

// qcow2 compression types (header byte 104).
const (
	qcowZlib = 0
	qcowZstd = 1
)

// qcow2Map is a qcow2 file being mapped.
type qcow2Map struct {
	diskMap
	clusterBits uint
	clusterSize int64
	compType    byte
	inflate     inflate // the decoder of compressed clusters, made at the first one
	// room bounds the L2 tables read and the clusters listed: each takes
	// a cluster of the file, a compressed cluster a byte at least (qemu
	// packs them byte by byte, a few bytes each for a 512-byte cluster of
	// one byte); so the 8-byte entries of the L2 tables read bound them.
	// An internal snapshot shares clusters with the active tables, which
	// never list one twice.
	room fileRoom
}

// mapQcow2 reads the header, the L1 table and the L2 tables by range and
// lists the data clusters in file order.
func mapQcow2(ctx context.Context, read rangeReader, fileSize int64) (*diskMap, error) {
	hdr, err := read(ctx, 0, min(qcowHeaderRead, fileSize))
	if err != nil {
		return nil, err
	}
	m, l1Off, l1Size, err := parseQcow2Header(hdr, fileSize)
	if err != nil {
		return nil, err
	}
	m.addMeta(0, hdr)
	l1, err := read(ctx, l1Off, l1Size*8)
	if err != nil {
		return nil, err
	}
	m.addMeta(l1Off, l1)
	perL2 := m.clusterSize / 8
	for i := int64(0); i < l1Size; i++ {
		l2Off := int64(binary.BigEndian.Uint64(l1[i*8:]) & qcowOffsetMask)
		if l2Off == 0 {
			continue
		}
		if l2Off+m.clusterSize > fileSize {
			return nil, fmt.Errorf("%w: L2 table %d at %d is past the end of the file", ErrUnsupported, i, l2Off)
		}
		if err := m.room.take(m.clusterSize, "the qcow2 L1 table lists more L2 tables"); err != nil {
			return nil, err
		}
		l2, err := read(ctx, l2Off, m.clusterSize)
		if err != nil {
			return nil, err
		}
		m.addMeta(l2Off, l2)
		if err := m.addClusters(l2, i*perL2*m.clusterSize, fileSize); err != nil {
			return nil, err
		}
	}
	m.sortRegions()
	return &m.diskMap, nil
}

// parseQcow2Header checks what the conversion supports and returns the
// L1 table's place.
func parseQcow2Header(h []byte, fileSize int64) (*qcow2Map, int64, int64, error) {
	if len(h) < 72 || string(h[:4]) != qcowMagic {
		return nil, 0, 0, fmt.Errorf("%w: not a qcow2 header", ErrUnsupported)
	}
	be := binary.BigEndian
	version := be.Uint32(h[4:])
	bits := be.Uint32(h[20:])
	m := &qcow2Map{clusterBits: uint(bits & 63), clusterSize: 1 << (bits & 63), diskMap: diskMap{virtualSize: int64(be.Uint64(h[24:]))}}
	m.room = newFileRoom(fileSize, 0, m.clusterSize)
	switch {
	case version != 2 && version != 3:
		return nil, 0, 0, fmt.Errorf("%w: qcow2 version %d", ErrUnsupported, version)
	case bits < 9 || bits > 21:
		return nil, 0, 0, fmt.Errorf("%w: cluster bits %d", ErrUnsupported, bits)
	case be.Uint64(h[8:]) != 0:
		return nil, 0, 0, fmt.Errorf("%w: the image has a backing file", ErrUnsupported)
	case be.Uint32(h[32:]) != 0:
		return nil, 0, 0, fmt.Errorf("%w: the image is encrypted", ErrUnsupported)
	case m.virtualSize < 0:
		return nil, 0, 0, fmt.Errorf("%w: virtual size %d", ErrUnsupported, m.virtualSize)
	}
	if version == 3 {
		var err error
		if m.compType, err = qcow2Features(h); err != nil {
			return nil, 0, 0, err
		}
	}
	l1Size := int64(be.Uint32(h[36:]))
	l1Off := int64(be.Uint64(h[40:]))
	perL1 := m.clusterSize * (m.clusterSize / 8)
	if l1Size > qcowMaxL1Entries || l1Size*perL1 < m.virtualSize || l1Off+l1Size*8 > fileSize {
		return nil, 0, 0, fmt.Errorf("%w: L1 table of %d entries at %d does not fit the image", ErrUnsupported, l1Size, l1Off)
	}
	return m, l1Off, l1Size, nil
}

// qcowRefused are the incompatible features that change how clusters read
// in a way the conversion does not follow.
var qcowRefused = []struct {
	bit  uint64
	name string
}{
	{qcowCorruptBit, "corrupt"},
	{qcowDataFileBit, "external data file"},
	{qcowExtL2Bit, "extended L2"},
}

// qcow2Features checks a v3 header's incompatible features and returns
// the compression type of its compressed clusters.
func qcow2Features(h []byte) (byte, error) {
	if len(h) < qcowHeaderLen {
		return 0, fmt.Errorf("%w: short qcow2 v3 header", ErrUnsupported)
	}
	be := binary.BigEndian
	f := be.Uint64(h[72:])
	var names []string
	for _, r := range qcowRefused {
		if f&r.bit != 0 {
			names = append(names, r.name)
		}
	}
	if unknown := f &^ (qcowDirtyBit | qcowCorruptBit | qcowDataFileBit | qcowCompTypeBit | qcowExtL2Bit); unknown != 0 {
		names = append(names, fmt.Sprintf("unknown %#x", unknown))
	}
	if names != nil {
		return 0, fmt.Errorf("%w: qcow2 incompatible features %#x (%s)", ErrUnsupported, f&^(qcowDirtyBit|qcowCompTypeBit), strings.Join(names, ", "))
	}
	// A header too short to hold the type means zlib, as in qemu.
	comp := byte(qcowZlib)
	if be.Uint32(h[100:]) > qcowCompTypeOff && len(h) > qcowCompTypeOff {
		comp = h[qcowCompTypeOff]
	}
	// qemu refuses a type and a feature bit that disagree too: the bit is
	// what keeps readers that know only zlib away from other types.
	bit := f&qcowCompTypeBit != 0
	switch {
	case comp != qcowZlib && comp != qcowZstd:
		return 0, fmt.Errorf("%w: qcow2 compression type %d", ErrUnsupported, comp)
	case comp != qcowZlib && !bit:
		return 0, fmt.Errorf("%w: qcow2 compression type %d without the compression type feature bit", ErrUnsupported, comp)
	case comp == qcowZlib && bit:
		return 0, fmt.Errorf("%w: qcow2 compression type feature bit with compression type 0 (zlib)", ErrUnsupported)
	}
	return comp, nil
}

// qcowListsMore is what a hostile qcow2 lists when its L2 tables point to
// the same clusters again and again.
const qcowListsMore = "the qcow2 L2 tables list more clusters"

// addClusters lists the data clusters of one L2 table covering guest
// offsets from base on.
func (m *qcow2Map) addClusters(l2 []byte, base, fileSize int64) error {
	for j := int64(0); j < int64(len(l2))/8; j++ {
		guest := base + j*m.clusterSize
		if guest >= m.virtualSize {
			return nil
		}
		e := binary.BigEndian.Uint64(l2[j*8:])
		if e&qcowCompressed != 0 {
			if err := m.addCompressed(e, guest, fileSize); err != nil {
				return err
			}
			continue
		}
		host := int64(e & qcowOffsetMask)
		if e&qcowZeroFlag != 0 || host == 0 {
			continue // reads as zeros: a hole
		}
		if host+min(m.clusterSize, m.virtualSize-guest) > fileSize {
			return fmt.Errorf("%w: cluster at %d is past the end of the file", ErrUnsupported, host)
		}
		if err := m.room.take(m.clusterSize, qcowListsMore); err != nil {
			return err
		}
		m.addData(host, m.clusterSize, guest, m.clusterSize, nil)
	}
	return nil
}

// addCompressed lists a compressed cluster: its stored range may run
// into the next compressed cluster (the window allows the overlap) and,
// for the last one, past the end of the file (convert clamps it).
func (m *qcow2Map) addCompressed(e uint64, guest, fileSize int64) error {
	host, n := qcow2Compressed(e, m.clusterBits)
	if host >= fileSize {
		return fmt.Errorf("%w: compressed cluster at %d is past the end of the file", ErrUnsupported, host)
	}
	if err := m.room.take(1, qcowListsMore); err != nil {
		return err
	}
	if m.inflate == nil {
		var err error
		if m.inflate, err = qcow2Inflate(m.compType); err != nil {
			return err
		}
	}
	m.addData(host, n, guest, m.clusterSize, m.inflate)
	return nil
}

// qcow2Compressed decodes the L2 entry of a compressed cluster: the host
// offset (any byte) in bits 0 to x-1 and the number of 512-byte sectors
// after the one holding it in bits x to 61. The stored bytes run to the
// end of the last sector: an upper bound, as qemu packs the next
// compressed cluster right after the stream, in the same sector.
func qcow2Compressed(e uint64, clusterBits uint) (host, n int64) {
	x := 62 - (clusterBits - 8)
	host = int64(e & (1<<x - 1))
	sectors := int64(e>>x&(1<<(clusterBits-8)-1)) + 1
	return host, sectors*qcowSectorSize - host%qcowSectorSize
}

// qcowMaxZstdWindow bounds the memory a zstd frame may ask for: qemu
// compresses one cluster (2 MiB at most) per frame, so its window is never
// larger; a crafted frame asking for more is refused, not allocated.
const qcowMaxZstdWindow = 8 << 20

// qcow2Inflate returns the decoder of the compression type, one for the
// whole conversion (convert calls it from one goroutine): making a
// decompressor allocates its tables and window, per cluster it would cost
// more than the decoding.
func qcow2Inflate(compType byte) (inflate, error) {
	if compType == qcowZlib {
		return new(zlibInflater).inflate, nil
	}
	// Concurrency 1 decodes in the caller's goroutine: nothing to close.
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(qcowMaxZstdWindow))
	if err != nil {
		return nil, err
	}
	return (&zstdInflater{d: d}).inflate, nil
}

// zlibInflater decodes qemu's "zlib" clusters, which are raw deflate
// streams (no zlib header or checksum). klauspost's flate rather than the
// standard library's: same streams, a decoding loop specialised for a
// bytes.Reader, about a quarter faster here.
type zlibInflater struct {
	src bytes.Reader
	fr  io.ReadCloser
}

func (z *zlibInflater) inflate(dst, src []byte) error {
	z.src.Reset(src)
	if z.fr == nil {
		z.fr = flate.NewReader(&z.src)
	} else if err := z.fr.(flate.Resetter).Reset(&z.src, nil); err != nil {
		return err
	}
	return fillCluster(z.fr, dst)
}

// zstdInflater decodes zstd clusters as a stream.
type zstdInflater struct {
	src bytes.Reader
	d   *zstd.Decoder
}

func (z *zstdInflater) inflate(dst, src []byte) error {
	z.src.Reset(src)
	// A bytes.Reader, not a bytes.Buffer: the decoder decodes a whole
	// Buffer at once, and the trailing bytes (the next cluster's frame)
	// with it.
	if err := z.d.Reset(&z.src); err != nil {
		return err
	}
	return fillCluster(z.d, dst)
}

// fillCluster reads the cluster from a decoder and stops when it is full,
// as qemu does: the bytes after the stream are not read.
func fillCluster(r io.Reader, dst []byte) error {
	if n, err := io.ReadFull(r, dst); err != nil {
		return fmt.Errorf("%d bytes of a %d-byte cluster: %w", n, len(dst), err)
	}
	return nil
}
