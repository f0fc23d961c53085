package exporter

import (
	"bytes"
	"cmp"
	"compress/zlib"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// vmdk hosted sparse extent fields (little-endian), as in the importer's
// diskformat/vmdk.go, which checks the same header on import.
const (
	vmdkMagic         = "KDMV"
	vmdkGDAtEnd       = ^uint64(0) // streamOptimized stream: the real header is the footer
	vmdkFlagZeroGrain = 1 << 2     // a grain table entry of 1 is a grain of zeros
	vmdkFlagMarkers   = 1 << 17    // grains are preceded by a grain marker
	vmdkDeflate       = 1          // compressAlgorithm of streamOptimized
	vmdkMarkerLen     = 12         // grain marker: guest sector uint64, size uint32
	vmdkMarkerFooter  = 3
	vmdkMaxGrain      = 1 << 16 // sectors (32 MiB): the importer's limit
	vmdkMaxGTEs       = 1 << 16 // the importer's limit (qemu and VMware write 512)
	vmdkMaxGD         = 8 << 20 // bytes of grain directory held in memory
	vmdkMaxDescriptor = 1 << 20
	vmdkTableSpan     = 4 << 20  // at most this many bytes per request for grain tables
	vmdkTableGap      = 64 << 10 // grain tables this close share a request
)

// vmdkHeader is what the conversion needs of a sparse extent header.
type vmdkHeader struct {
	version, flags, gtes             uint32
	capacity, grain, descOff, descSz uint64
	gd                               uint64
	compress                         uint16
}

func parseVMDKHeader(b []byte) (vmdkHeader, error) {
	if len(b) < 512 || string(b[:4]) != vmdkMagic {
		return vmdkHeader{}, fmt.Errorf("%w: not a vmdk sparse extent header", ErrUnsupported)
	}
	le := binary.LittleEndian
	return vmdkHeader{
		version: le.Uint32(b[4:]), flags: le.Uint32(b[8:]), capacity: le.Uint64(b[12:]),
		grain: le.Uint64(b[20:]), descOff: le.Uint64(b[28:]), descSz: le.Uint64(b[36:]),
		gtes: le.Uint32(b[44:]), gd: le.Uint64(b[56:]), compress: le.Uint16(b[77:]),
	}, nil
}

// vmdkMap is a vmdk sparse extent being mapped.
type vmdkMap struct {
	diskMap
	h          vmdkHeader
	fileSize   int64
	grainBytes int64
	room       fileRoom // bounds the grain tables read and the grains listed
	grainRoom  int64    // bytes of the file a grain takes at least
	z          *grainInflater
}

// mapVMDK reads the header (or the footer of a stream), the embedded
// descriptor, the primary grain directory and the grain tables by range and
// lists the grains. The redundant directory and tables are a copy for
// recovery that qemu does not read either: they are not listed.
func mapVMDK(ctx context.Context, read rangeReader, fileSize int64) (*diskMap, error) {
	m, err := readVMDKHeader(ctx, read, fileSize)
	if err != nil {
		return nil, err
	}
	if err := m.checkDescriptor(ctx, read); err != nil {
		return nil, err
	}
	gd, err := m.grainDirectory(ctx, read)
	if err != nil {
		return nil, err
	}
	offs, first, err := m.grainTables(gd)
	if err != nil {
		return nil, err
	}
	gts, err := readTables(ctx, read, offs, int64(m.h.gtes)*4)
	if err != nil {
		return nil, err
	}
	for k, gt := range gts {
		m.addMeta(offs[k], gt)
		if err := m.addGrains(gt, first[k]); err != nil {
			return nil, err
		}
	}
	m.sortRegions()
	return &m.diskMap, nil
}

// readVMDKHeader reads and checks the header, or the footer when the
// header leaves the grain directory's place to it.
func readVMDKHeader(ctx context.Context, read rangeReader, fileSize int64) (*vmdkMap, error) {
	if fileSize < 512 {
		return nil, fmt.Errorf("%w: a vmdk of %d bytes has no header", ErrUnsupported, fileSize)
	}
	b, err := read(ctx, 0, 512)
	if err != nil {
		return nil, err
	}
	h, err := parseVMDKHeader(b)
	if err != nil {
		return nil, err
	}
	m := &vmdkMap{fileSize: fileSize}
	m.addMeta(0, b)
	if h.gd == vmdkGDAtEnd {
		if h, err = m.readFooter(ctx, read); err != nil {
			return nil, err
		}
	}
	if err := m.setHeader(h); err != nil {
		return nil, err
	}
	return m, nil
}

// readFooter reads the end of a streamOptimized extent written as a stream
// (VMware): footer marker, footer, end-of-stream marker, a sector each. The
// footer is a copy of the header that places the grain directory; qemu
// takes it as the header, and so does this.
func (m *vmdkMap) readFooter(ctx context.Context, read rangeReader) (vmdkHeader, error) {
	const n = 3 * 512
	if m.fileSize%512 != 0 || m.fileSize < 512+n {
		return vmdkHeader{}, fmt.Errorf("%w: the vmdk places its grain directory in a footer, but its %d bytes cannot end with one", ErrUnsupported, m.fileSize)
	}
	off := m.fileSize - n
	t, err := read(ctx, off, n)
	if err != nil {
		return vmdkHeader{}, err
	}
	le := binary.LittleEndian
	marker, eos := t[:512], t[1024:]
	if le.Uint32(marker[8:]) != 0 || le.Uint32(marker[12:]) != vmdkMarkerFooter ||
		le.Uint64(eos) != 0 || le.Uint32(eos[8:]) != 0 || le.Uint32(eos[12:]) != 0 {
		return vmdkHeader{}, fmt.Errorf("%w: the vmdk places its grain directory in a footer, but does not end with footer and end-of-stream markers", ErrUnsupported)
	}
	h, err := parseVMDKHeader(t[512:1024])
	if err != nil {
		return vmdkHeader{}, fmt.Errorf("%w: the vmdk footer is not a sparse extent header", ErrUnsupported)
	}
	if h.gd == vmdkGDAtEnd {
		return vmdkHeader{}, fmt.Errorf("%w: the vmdk footer does not place the grain directory", ErrUnsupported)
	}
	m.addMeta(off, t)
	return h, nil
}

// setHeader checks what the conversion supports and the sizes it relies on.
func (m *vmdkMap) setHeader(h vmdkHeader) error {
	switch {
	case h.version < 1 || h.version > 3:
		return fmt.Errorf("%w: vmdk version %d", ErrUnsupported, h.version)
	case h.grain == 0 || h.grain > vmdkMaxGrain:
		return fmt.Errorf("%w: vmdk grain of %d sectors (1 to %d)", ErrUnsupported, h.grain, vmdkMaxGrain)
	case h.gtes == 0 || h.gtes > vmdkMaxGTEs:
		return fmt.Errorf("%w: vmdk grain tables of %d entries (1 to %d)", ErrUnsupported, h.gtes, vmdkMaxGTEs)
	case h.capacity == 0 || h.capacity > math.MaxInt64/512:
		// qemu reads a capacity of 0 as "the disk is described elsewhere".
		return fmt.Errorf("%w: vmdk capacity of %d sectors", ErrUnsupported, h.capacity)
	case h.compress > vmdkDeflate:
		return fmt.Errorf("%w: vmdk compression algorithm %d (only deflate)", ErrUnsupported, h.compress)
	case h.compress == vmdkDeflate && h.flags&vmdkFlagMarkers == 0:
		return fmt.Errorf("%w: vmdk compressed grains without grain markers", ErrUnsupported)
	}
	m.h = h
	m.virtualSize = int64(h.capacity) * 512
	m.grainBytes = int64(h.grain) * 512
	// A grain takes a whole grain, or a sector at least when compressed
	// (behind its marker, sector-aligned).
	m.room, m.grainRoom = newFileRoom(m.fileSize, 0, m.grainBytes), m.grainBytes
	if h.compress == vmdkDeflate {
		m.room, m.grainRoom = newFileRoom(m.fileSize, 0, 0), 512
		m.z = &grainInflater{grain: m.grainBytes}
	}
	return nil
}

// checkDescriptor refuses a delta disk: qemu reads its parent from the
// embedded descriptor and the parent's data under the delta's holes.
func (m *vmdkMap) checkDescriptor(ctx context.Context, read rangeReader) error {
	off, n := m.h.descOff, m.h.descSz
	if off == 0 || n == 0 {
		return nil
	}
	if n > vmdkMaxDescriptor/512 || off > uint64(m.fileSize)/512 || (off+n)*512 > uint64(m.fileSize) {
		return fmt.Errorf("%w: vmdk embedded descriptor of %d sectors at sector %d does not fit the file", ErrUnsupported, n, off)
	}
	b, err := read(ctx, int64(off)*512, int64(n)*512)
	if err != nil {
		return err
	}
	m.addMeta(int64(off)*512, b)
	if parent := descriptorValue(b, "parentFileNameHint"); parent != "" {
		return fmt.Errorf("%w: the vmdk is a delta of %q, which is not in the image", ErrUnsupported, parent)
	}
	return nil
}

// descriptorValue is the value of key in a vmdk descriptor, unquoted.
func descriptorValue(b []byte, key string) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(line, "=")
		if ok && strings.TrimSpace(k) == key {
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return ""
}

// grainDirectory reads the primary grain directory: one entry per grain
// table needed to cover the capacity.
func (m *vmdkMap) grainDirectory(ctx context.Context, read rangeReader) ([]byte, error) {
	perGT := m.h.grain * uint64(m.h.gtes)
	n := (m.h.capacity + perGT - 1) / perGT * 4
	if n > vmdkMaxGD {
		return nil, fmt.Errorf("%w: vmdk grain directory of %d bytes (capacity %d sectors, %d sectors per grain table; at most %d bytes)",
			ErrUnsupported, n, m.h.capacity, perGT, vmdkMaxGD)
	}
	gd := m.h.gd
	if gd == 0 {
		return nil, fmt.Errorf("%w: the vmdk has no grain directory (sector 0)", ErrUnsupported)
	}
	if gd > uint64(m.fileSize)/512 || int64(gd)*512+int64(n) > m.fileSize {
		return nil, fmt.Errorf("%w: vmdk grain directory of %d bytes at sector %d is past the end of the file", ErrUnsupported, n, gd)
	}
	b, err := read(ctx, int64(gd)*512, int64(n))
	if err != nil {
		return nil, err
	}
	m.addMeta(int64(gd)*512, b)
	return b, nil
}

// grainTables lists where the grain directory places the grain tables and
// the first grain of each, charging each table to the room before it is
// read: the sectors it spans, as tables are placed by sector and in a file
// qemu or VMware wrote no two share one. Without the charge, a directory
// whose entries all place one table would have it held and its entries
// scanned once per entry: up to 2M times a table of 64Ki entries.
func (m *vmdkMap) grainTables(gd []byte) (offs, first []int64, err error) {
	gtBytes := int64(m.h.gtes) * 4
	gtRoom := (gtBytes + 511) / 512 * 512
	for i := range int64(len(gd) / 4) {
		s := int64(binary.LittleEndian.Uint32(gd[i*4:]))
		if s == 0 {
			continue // the grain table's grains are all unallocated
		}
		if s*512+gtBytes > m.fileSize {
			return nil, nil, fmt.Errorf("%w: vmdk grain table %d at sector %d is past the end of the file", ErrUnsupported, i, s)
		}
		if err := m.room.take(gtRoom, "the vmdk grain directory lists more grain tables"); err != nil {
			return nil, nil, err
		}
		offs, first = append(offs, s*512), append(first, i*int64(m.h.gtes))
	}
	return offs, first, nil
}

// addGrains lists the grains of one grain table, whose first grain is
// grain number first of the disk.
func (m *vmdkMap) addGrains(gt []byte, first int64) error {
	for j := range int64(len(gt) / 4) {
		guest := (first + j) * m.grainBytes
		if guest >= m.virtualSize {
			return nil
		}
		s := binary.LittleEndian.Uint32(gt[j*4:])
		if s == 0 || s == 1 && m.h.flags&vmdkFlagZeroGrain != 0 {
			continue // unallocated or zeroed: a hole
		}
		if err := m.room.take(m.grainRoom, "the vmdk grain tables list more grains"); err != nil {
			return err
		}
		off := int64(s) * 512
		if m.z != nil {
			// The stored length is in the grain marker, met in the
			// sequential pass: the region reaches as far as qemu reads.
			if off+vmdkMarkerLen > m.fileSize {
				return fmt.Errorf("%w: vmdk grain %d at sector %d is past the end of the file", ErrUnsupported, first+j, s)
			}
			n := min(vmdkMarkerLen+2*m.grainBytes, m.fileSize-off)
			m.addData(off, n, guest, min(m.grainBytes, m.virtualSize-guest), m.z.grainAt(uint64(guest/512)))
			continue
		}
		if off+min(m.grainBytes, m.virtualSize-guest) > m.fileSize {
			return fmt.Errorf("%w: vmdk grain %d at sector %d is past the end of the file", ErrUnsupported, first+j, s)
		}
		m.addData(off, m.grainBytes, guest, m.grainBytes, nil)
	}
	return nil
}

// readTables reads pieces of n bytes at offs with one request per run of
// pieces close to each other: qemu and VMware write the grain tables side
// by side, and a request per 2 KiB table would be 32768 for a 1 TiB disk.
// The pieces share the buffers read.
func readTables(ctx context.Context, read rangeReader, offs []int64, n int64) ([][]byte, error) {
	order := make([]int, len(offs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(offs[a], offs[b]) })
	out := make([][]byte, len(offs))
	for i := 0; i < len(order); {
		start, end := offs[order[i]], offs[order[i]]+n
		j := i + 1
		for ; j < len(order); j++ {
			o := offs[order[j]]
			if o > end+vmdkTableGap || o+n-start > vmdkTableSpan {
				break
			}
			end = max(end, o+n)
		}
		b, err := read(ctx, start, end-start)
		if err != nil {
			return nil, err
		}
		for _, k := range order[i:j] {
			o := offs[k] - start
			out[k] = b[o : o+n : o+n]
		}
		i = j
	}
	return out, nil
}

// grainInflater decodes the compressed grains of a streamOptimized extent:
// a grain marker (guest sector, size) and size bytes of zlib data (RFC
// 1950) that inflate to a grain, or to less for the last grain of a disk
// whose capacity is not whole grains (qemu writes it so).
type grainInflater struct {
	grain int64 // bytes
	src   bytes.Reader
	zr    io.ReadCloser
}

// grainAt is the decoder of the grain the grain table places at guest
// sector lba.
func (z *grainInflater) grainAt(lba uint64) inflate {
	return func(dst, src []byte) error { return z.inflate(dst, src, lba) }
}

// inflate fills dst (the grain up to the capacity) from src (marker and
// data, and what follows up to the most qemu reads).
func (z *grainInflater) inflate(dst, src []byte, lba uint64) error {
	if len(src) < vmdkMarkerLen {
		return fmt.Errorf("the grain marker is cut by the end of the file")
	}
	le := binary.LittleEndian
	if got := le.Uint64(src); got != lba {
		return fmt.Errorf("the grain marker holds guest sector %d, the grain table says %d", got, lba)
	}
	size := int64(le.Uint32(src[8:]))
	if size == 0 || size > int64(len(src))-vmdkMarkerLen {
		return fmt.Errorf("the grain marker gives %d bytes of compressed data, more than the file or a grain holds", size)
	}
	z.src.Reset(src[vmdkMarkerLen : vmdkMarkerLen+size])
	var err error
	if z.zr == nil {
		z.zr, err = zlib.NewReader(&z.src)
	} else {
		err = z.zr.(zlib.Resetter).Reset(&z.src, nil)
	}
	if err != nil {
		return fmt.Errorf("reading the zlib header: %v", err)
	}
	if _, err := io.ReadFull(z.zr, dst); err != nil {
		return fmt.Errorf("inflating the grain to %d bytes: %v", len(dst), err)
	}
	// Read to the end, so that the checksum is verified, and refuse a
	// grain that inflates to more than a grain.
	rest, err := io.Copy(io.Discard, io.LimitReader(z.zr, z.grain-int64(len(dst))+1))
	if err != nil {
		return fmt.Errorf("inflating the grain: %v", err)
	}
	if int64(len(dst))+rest > z.grain {
		return fmt.Errorf("the grain inflates to more than %d bytes", z.grain)
	}
	return nil
}
