package diskformat

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"strings"
)

// start refuses what the header alone shows (backing file, data file,
// unknown features) and registers the tables for the truncation checks.
func (q *qcow2Parser) start(e *engine, head []byte) error {
	h, err := parseQcow2Header(head)
	if err != nil {
		return err
	}
	q.capture = &e.capture
	q.clusterBits = uint(h.clusterBits)
	q.clusterSize = 1 << h.clusterBits
	q.l2Entry = 8
	if err := q.refusals(h, head); err != nil {
		return err
	}
	if h.incompat&qcowIncExtL2 != 0 {
		q.l2Entry = 16
	}
	if h.size > uint64(maxOffset) {
		return fmt.Errorf("%w: qcow2 virtual size %d is impossible", ErrCorrupt, h.size)
	}
	q.virtualSize = int64(h.size)
	return q.tables(h)
}

func (q *qcow2Parser) refusals(h qcow2Header, head []byte) error {
	if h.backingOff != 0 {
		return fmt.Errorf("%w: qcow2 image has a backing file (%s): refusing; import a standalone image (qemu-img convert -O qcow2)",
			ErrBackingFile, quotedAt(head, h.backingOff, uint64(h.backingSize), 1023))
	}
	if h.incompat&qcowIncDataFile != 0 {
		return fmt.Errorf("%w: qcow2 image has an external data file%s: refusing", ErrExternalDataFile, dataFileName(head, h, q.clusterSize))
	}
	if unknown := h.incompat &^ qcowKnownIncompat; unknown != 0 {
		return fmt.Errorf("%w: qcow2 image needs unknown incompatible features (bits %s): refusing", ErrUnknownFeatures, bitList(unknown))
	}
	if h.incompat&qcowIncCorrupt != 0 {
		return fmt.Errorf("%w: qcow2 image is marked corrupt by qemu: refusing (repair it with qemu-img check -r all)", ErrCorrupt)
	}
	if err := q.extensions(h, head); err != nil {
		return err
	}
	if h.crypt != 0 {
		return fmt.Errorf("%w: encrypted qcow2 images are not supported", ErrUnsupportedFormat)
	}
	return nil
}

// extensions walks the header extensions, which lie in the first cluster
// (or before the backing file name): the data file extension is refused.
func (q *qcow2Parser) extensions(h qcow2Header, head []byte) error {
	be := binary.BigEndian
	end := min(q.clusterSize, int64(len(head)))
	for off := int64(h.headerLen); ; {
		if off+8 > end {
			if off+8 > q.clusterSize {
				return fmt.Errorf("%w: qcow2 header extensions run past the first cluster", ErrCorrupt)
			}
			return fmt.Errorf("%w: qcow2 header extensions cut at byte %d", ErrTruncated, len(head))
		}
		typ, n := be.Uint32(head[off:]), int64(be.Uint32(head[off+4:]))
		if typ == qcowExtEnd {
			return nil
		}
		next := off + 8 + (n+7)&^7
		if next > q.clusterSize {
			return fmt.Errorf("%w: qcow2 header extension 0x%08x (%d bytes) runs past the first cluster", ErrCorrupt, typ, n)
		}
		if next > end {
			return fmt.Errorf("%w: qcow2 header extensions cut at byte %d", ErrTruncated, len(head))
		}
		if typ == qcowExtDataFile {
			return fmt.Errorf("%w: qcow2 image has an external data file (%s): refusing",
				ErrExternalDataFile, quotedAt(head, uint64(off+8), uint64(n), 1023))
		}
		off = next
	}
}

// tables checks the table offsets and registers the L1 and refcount tables
// for capture; every table end counts for the truncation check.
func (q *qcow2Parser) tables(h qcow2Header) error {
	cs := uint64(q.clusterSize)
	l1Bytes := uint64(h.l1Size) * 8
	if l1Bytes > qcowMaxL1Bytes {
		return fmt.Errorf("%w: qcow2 L1 table of %d entries is larger than qemu allows", ErrCorrupt, h.l1Size)
	}
	perL1 := cs * (cs / uint64(q.l2Entry)) // bytes mapped by one L1 entry
	if need := (h.size + perL1 - 1) / perL1; uint64(h.l1Size) < need {
		return fmt.Errorf("%w: qcow2 L1 table of %d entries is too small for a virtual size of %d", ErrCorrupt, h.l1Size, h.size)
	}
	if err := q.table("L1 table", h.l1Off, l1Bytes); err != nil {
		return err
	}
	refBytes := uint64(h.refClusters) * cs
	if refBytes > qcowMaxRefTable || h.refClusters == 0 {
		return fmt.Errorf("%w: qcow2 refcount table of %d clusters is invalid", ErrCorrupt, h.refClusters)
	}
	if err := q.table("refcount table", h.refOff, refBytes); err != nil {
		return err
	}
	if h.nbSnap > qcowMaxSnapshots {
		return fmt.Errorf("%w: qcow2 image declares %d snapshots", ErrCorrupt, h.nbSnap)
	}
	if h.nbSnap > 0 {
		if err := q.table("snapshot table", h.snapOff, uint64(h.nbSnap)*40); err != nil {
			return err
		}
	}
	if l1Bytes > 0 {
		if l1Bytes > qcowCaptureL1 {
			q.capture.missed++
		} else if err := q.capture.add(int64(h.l1Off), int64(l1Bytes), q.onL1); err != nil {
			return err
		}
	}
	return q.capture.add(int64(h.refOff), int64(min(refBytes, qcowCaptureRefTab)), q.onRefTable)
}

// table checks that a table starts on a cluster boundary and notes its end.
func (q *qcow2Parser) table(what string, off, n uint64) error {
	if off%uint64(q.clusterSize) != 0 || off > uint64(maxOffset) || (n > 0 && off == 0) {
		return fmt.Errorf("%w: qcow2 %s offset 0x%x is invalid", ErrCorrupt, what, off)
	}
	q.ends.note(int64(off+n), what)
	return nil
}

func (q *qcow2Parser) onL1(b []byte) error {
	for i := 0; i+8 <= len(b); i += 8 {
		off := int64(binary.BigEndian.Uint64(b[i:]) & qcowOffsetMask)
		if off == 0 {
			continue
		}
		if off%q.clusterSize != 0 {
			return fmt.Errorf("%w: qcow2 L1 entry %d points to unaligned offset 0x%x", ErrCorrupt, i/8, off)
		}
		q.ends.note(off+q.clusterSize, "L2 table")
		if err := q.capture.add(off, q.clusterSize, q.onL2); err != nil {
			return err
		}
	}
	return nil
}

func (q *qcow2Parser) onL2(b []byte) error {
	for i := 0; i+8 <= len(b); i += q.l2Entry {
		ent := binary.BigEndian.Uint64(b[i:])
		if ent&qcowCompressed != 0 {
			x := 62 - (q.clusterBits - 8)
			off := ent & (1<<x - 1)
			extra := (ent >> x) & (1<<(q.clusterBits-8) - 1)
			// qemu may end the last compressed cluster inside its last
			// sector, so only that sector's first byte must have arrived.
			q.ends.note(int64(off&^511+extra*512+1), "compressed cluster")
			continue
		}
		off := int64(ent & qcowOffsetMask)
		if off == 0 {
			continue
		}
		if off%q.clusterSize != 0 {
			return fmt.Errorf("%w: qcow2 L2 entry points to unaligned offset 0x%x", ErrCorrupt, off)
		}
		// Only the start: a last cluster written in part is legal.
		q.ends.note(off+1, "data cluster")
	}
	return nil
}

func (q *qcow2Parser) onRefTable(b []byte) error {
	for i := 0; i+8 <= len(b); i += 8 {
		off := int64(binary.BigEndian.Uint64(b[i:]) & qcowOffsetMask)
		if off != 0 {
			q.ends.note(off+1, "refcount block")
		}
	}
	return nil
}

// quotedAt returns the string stored at [off, off+n) of head, quoted, or a
// description of where it is when it is not in the head or too long.
func quotedAt(head []byte, off, n, limit uint64) string {
	if n == 0 || n > limit || off > uint64(len(head)) || n > uint64(len(head))-off {
		return fmt.Sprintf("name of %d bytes at offset %d", n, off)
	}
	return fmt.Sprintf("%q", head[off:off+n])
}

// dataFileName finds the data file extension to name the file; the
// feature bit alone may be set without it.
func dataFileName(head []byte, h qcow2Header, clusterSize int64) string {
	be := binary.BigEndian
	end := min(clusterSize, int64(len(head)))
	for off := int64(h.headerLen); off+8 <= end; {
		typ, n := be.Uint32(head[off:]), int64(be.Uint32(head[off+4:]))
		if typ == qcowExtEnd || off+8+n > end {
			break
		}
		if typ == qcowExtDataFile {
			return " (" + quotedAt(head, uint64(off+8), uint64(n), 1023) + ")"
		}
		off += 8 + (n+7)&^7
	}
	return ""
}

func bitList(v uint64) string {
	var s []string
	for v != 0 {
		b := bits.TrailingZeros64(v)
		s = append(s, fmt.Sprint(b))
		v &^= 1 << b
	}
	return strings.Join(s, ", ")
}
