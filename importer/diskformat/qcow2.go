package diskformat

import (
	"encoding/binary"
	"fmt"
)

// qcow2 limits, as qemu enforces them, so that nothing is allocated or
// looped over by an untrusted size.
const (
	qcowMinClusterBits = 9
	qcowMaxClusterBits = 21
	qcowMaxL1Bytes     = 32 << 20 // qemu's QCOW_MAX_L1_SIZE
	qcowMaxRefTable    = 8 << 20  // qemu's QCOW_MAX_REFTABLE_SIZE
	qcowMaxSnapshots   = 65536
	qcowCaptureL1      = 4 << 20 // larger L1 tables are only range-checked
	qcowCaptureRefTab  = 1 << 20

	qcowKnownIncompat = 0x1f // dirty, corrupt, data file, compression type, extended L2
	qcowIncCorrupt    = 1 << 1
	qcowIncDataFile   = 1 << 2
	qcowIncExtL2      = 1 << 4

	qcowExtEnd      = 0
	qcowExtDataFile = 0x44415441
	qcowOffsetMask  = 0x00fffffffffffe00 // bits 9-55 of L1/L2/refcount entries
	qcowCompressed  = 1 << 62
)

type qcow2Parser struct {
	clusterBits uint
	clusterSize int64
	l2Entry     int // bytes per L2 entry: 8, or 16 with extended L2
	virtualSize int64
	ends        maxEnd
	capture     *capturer
}

// maxEnd tracks the furthest byte the image's tables point to, so that
// truncation is found without keeping any table.
type maxEnd struct {
	end  int64
	what string
}

func (m *maxEnd) note(end int64, what string) {
	if end > m.end {
		m.end, m.what = end, what
	}
}

func (m *maxEnd) check(format string, total int64) error {
	if m.end > total {
		return fmt.Errorf("%w: %s image is truncated: its %s ends at byte %d but only %d bytes arrived",
			ErrTruncated, format, m.what, m.end, total)
	}
	return nil
}

func (q *qcow2Parser) headNeed(head []byte) int {
	if len(head) < 24 {
		return 0
	}
	cb := binary.BigEndian.Uint32(head[20:])
	if cb < qcowMinClusterBits || cb > qcowMaxClusterBits {
		return 0
	}
	return 1 << cb
}

func (q *qcow2Parser) needsAll() bool { return true }

func (q *qcow2Parser) finish(total int64, _ []byte) (int64, error) {
	if err := q.ends.check("qcow2", total); err != nil {
		return 0, err
	}
	return q.virtualSize, nil
}

type qcow2Header struct {
	version, backingSize, clusterBits, crypt, l1Size, refClusters, nbSnap uint32
	backingOff, size, l1Off, refOff, snapOff                              uint64
	incompat                                                              uint64
	headerLen                                                             uint32
}

func parseQcow2Header(head []byte) (qcow2Header, error) {
	be := binary.BigEndian
	if len(head) < 72 {
		return qcow2Header{}, fmt.Errorf("%w: qcow2 header cut after %d bytes", ErrTruncated, len(head))
	}
	h := qcow2Header{
		version: be.Uint32(head[4:]), backingOff: be.Uint64(head[8:]), backingSize: be.Uint32(head[16:]),
		clusterBits: be.Uint32(head[20:]), size: be.Uint64(head[24:]), crypt: be.Uint32(head[32:]),
		l1Size: be.Uint32(head[36:]), l1Off: be.Uint64(head[40:]), refOff: be.Uint64(head[48:]),
		refClusters: be.Uint32(head[56:]), nbSnap: be.Uint32(head[60:]), snapOff: be.Uint64(head[64:]),
		headerLen: 72,
	}
	if h.clusterBits < qcowMinClusterBits || h.clusterBits > qcowMaxClusterBits {
		return h, fmt.Errorf("%w: qcow2 cluster size 2^%d is outside 2^9..2^21", ErrCorrupt, h.clusterBits)
	}
	if h.version == 3 {
		if len(head) < 104 {
			return h, fmt.Errorf("%w: qcow2 version 3 header cut after %d bytes", ErrTruncated, len(head))
		}
		h.incompat = be.Uint64(head[72:])
		h.headerLen = be.Uint32(head[100:])
		if h.headerLen < 104 || h.headerLen > 1<<h.clusterBits || h.headerLen%8 != 0 {
			return h, fmt.Errorf("%w: qcow2 header length %d is invalid", ErrCorrupt, h.headerLen)
		}
	}
	return h, nil
}
