package exporter

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unsafe"
)

// hostileQcow2 is a v3 qcow2 of four 64 KiB clusters: the header, an L1
// table whose l1 entries all point to the L2 table in cluster 2, whose
// entries all are entry (cluster 3 holds data). The virtual size is what
// the L1 table covers.
func hostileQcow2(l1 int, entry uint64) []byte {
	const cs = 1 << 16
	be := binary.BigEndian
	f := make([]byte, 4*cs)
	copy(f, qcowHeader())
	be.PutUint64(f[24:], uint64(l1)*cs*(cs/8))
	be.PutUint32(f[36:], uint32(l1))
	be.PutUint64(f[40:], cs)
	for i := range l1 {
		be.PutUint64(f[cs+i*8:], 2*cs|1<<63)
	}
	for j := range cs / 8 {
		be.PutUint64(f[2*cs+j*8:], entry)
	}
	return f
}

// limitedRanges reads file by range, but no more than limit bytes in all:
// without the bound, a hostile map would read the same L2 table until the
// memory is exhausted; with it, it fails here instead of taking the test
// machine down.
func limitedRanges(file []byte, limit int64) rangeReader {
	var total int64
	read := testRanges(file)
	return func(ctx context.Context, off, n int64) ([]byte, error) {
		if total += n; total > limit {
			return nil, fmt.Errorf("the mapper read over %d bytes of a %d-byte file", limit, len(file))
		}
		return read(ctx, off, n)
	}
}

// TestMapQcow2Room: L1 entries that share an L2 table, and L2 entries
// that share a cluster (stored or compressed), list more than the file can
// hold: they are refused by name, after reading no more than the file's
// size again, while a qcow2 that lists each of its places once maps.
func TestMapQcow2Room(t *testing.T) {
	const cs, perL2 = 1 << 16, 1 << 13
	stored, compressed := uint64(3*cs|1<<63), uint64(qcowCompressed|3*cs)
	for _, c := range []struct {
		name  string
		l1    int
		entry uint64 // every entry of the L2 table
		huge  bool   // the map would hold over 512 MiB without the bound
		err   string
	}{
		{"L1 entries share an L2 table", perL2, 0, true, "the qcow2 L1 table lists more L2 tables than its 262144 bytes can hold"},
		{"L2 entries share a cluster", 1, stored, false, "the qcow2 L2 tables list more clusters than its 262144 bytes can hold"},
		{"both", perL2, stored, true, "the qcow2 L2 tables list more clusters than its 262144 bytes can hold"},
		{"L2 entries share a compressed cluster", perL2, compressed, true, "the qcow2 L1 table lists more L2 tables than its 262144 bytes can hold"},
		{"each place once", 1, 0, false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := hostileQcow2(c.l1, c.entry)
			if c.err == "" {
				binary.BigEndian.PutUint64(file[2*cs:], stored) // one cluster, listed once
			}
			// What the tables list: an L2 table held per L1 entry, a
			// region per allocated L2 entry.
			holds := int64(c.l1) * cs
			if c.entry != 0 {
				holds += int64(c.l1) * perL2 * int64(unsafe.Sizeof(region{}))
			}
			if c.huge && holds < 512<<20 {
				t.Fatalf("the file lists %d bytes of map: not hostile", holds)
			}
			size := int64(len(file))
			m, err := mapQcow2(context.Background(), limitedRanges(file, 2*size), size)
			if c.err == "" {
				if err != nil || len(m.regions) != 4 {
					t.Fatalf("error %v, map %+v", err, m)
				}
				return
			}
			if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), c.err) {
				t.Errorf("error %v, want %q", err, c.err)
			}
		})
	}
}
