package exporter

import (
	"context"
	"encoding/binary"
	"fmt"
)

// qcow2 fields used to convert to raw (big-endian, offsets in the header).
const (
	qcowMagic        = "QFI\xfb"
	qcowHeaderLen    = 104
	qcowOffsetMask   = 0x00fffffffffffe00 // bits 9-55 of L1 and L2 entries
	qcowCompressed   = 1 << 62            // L2: a compressed cluster
	qcowZeroFlag     = 1                  // L2 (v3): the cluster reads as zeros
	qcowDirtyBit     = 1                  // incompatible feature 0: refcounts may be stale
	qcowMaxL1Entries = 32 << 20 / 8       // qemu's own limit on the L1 table
)

// qcow2Map is a qcow2 file being mapped.
type qcow2Map struct {
	diskMap
	clusterSize int64
}

// mapQcow2 reads the header, the L1 table and the L2 tables by range and
// lists the data clusters in file order.
func mapQcow2(ctx context.Context, read rangeReader, fileSize int64) (*diskMap, error) {
	hdr, err := read(ctx, 0, min(qcowHeaderLen, fileSize))
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
	m := &qcow2Map{clusterSize: 1 << (bits & 63), diskMap: diskMap{virtualSize: int64(be.Uint64(h[24:]))}}
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
		if len(h) < qcowHeaderLen {
			return nil, 0, 0, fmt.Errorf("%w: short qcow2 v3 header", ErrUnsupported)
		}
		// Dirty only says the refcounts may be stale; every other bit
		// (corrupt, external data file, compression type, extended L2)
		// changes how clusters read.
		if f := be.Uint64(h[72:]) &^ qcowDirtyBit; f != 0 {
			return nil, 0, 0, fmt.Errorf("%w: qcow2 incompatible features %#x (corrupt, external data file, compression type or extended L2)", ErrUnsupported, f)
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
			return fmt.Errorf("%w: the image has compressed clusters (use qemu-img convert)", ErrUnsupported)
		}
		host := int64(e & qcowOffsetMask)
		if e&qcowZeroFlag != 0 || host == 0 {
			continue // reads as zeros: a hole
		}
		if host+min(m.clusterSize, m.virtualSize-guest) > fileSize {
			return fmt.Errorf("%w: cluster at %d is past the end of the file", ErrUnsupported, host)
		}
		m.addData(host, m.clusterSize, guest, m.clusterSize, nil)
	}
	return nil
}
