package exporter

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// qcowHeader is a v3 header: 64 KiB clusters, 1 GiB, L1 of 2 entries at 196608.
func qcowHeader() []byte {
	h := make([]byte, qcowHeaderLen)
	be := binary.BigEndian
	copy(h, qcowMagic)
	be.PutUint32(h[4:], 3)
	be.PutUint32(h[20:], 16)
	be.PutUint64(h[24:], 1<<30)
	be.PutUint32(h[36:], 2)
	be.PutUint64(h[40:], 3<<16)
	return h
}

func TestParseQcow2Header(t *testing.T) {
	m, l1Off, l1Size, err := parseQcow2Header(qcowHeader(), 1<<20)
	if err != nil || m.clusterSize != 65536 || m.virtualSize != 1<<30 || l1Off != 196608 || l1Size != 2 {
		t.Fatalf("%+v %d %d %v", m, l1Off, l1Size, err)
	}
	for _, c := range []struct {
		want string
		edit func(h []byte)
	}{
		{"backing file", func(h []byte) { binary.BigEndian.PutUint64(h[8:], 512) }},
		{"encrypted", func(h []byte) { binary.BigEndian.PutUint32(h[32:], 2) }},
		{"version 4", func(h []byte) { binary.BigEndian.PutUint32(h[4:], 4) }},
		{"incompatible features 0x10", func(h []byte) { binary.BigEndian.PutUint64(h[72:], 0x11) }},
		{"incompatible features 0x4", func(h []byte) { binary.BigEndian.PutUint64(h[72:], 0x4) }},
		{"L1 table of 1 entries", func(h []byte) { binary.BigEndian.PutUint32(h[36:], 1) }},
		{"cluster bits 30", func(h []byte) { binary.BigEndian.PutUint32(h[20:], 30) }},
		{"not a qcow2", func(h []byte) { h[0] = 'X' }},
	} {
		h := qcowHeader()
		c.edit(h)
		if _, _, _, err := parseQcow2Header(h, 1<<20); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", c.want, err)
		}
	}
	h := qcowHeader()
	binary.BigEndian.PutUint64(h[72:], qcowDirtyBit)
	if _, _, _, err := parseQcow2Header(h, 1<<20); err != nil {
		t.Errorf("dirty: %v", err)
	}
}

// TestAddClusters: zero-flag and unallocated entries are holes, the last
// cluster past the virtual size is not listed, compressed ones refused.
func TestAddClusters(t *testing.T) {
	m := &qcow2Map{clusterSize: 512, diskMap: diskMap{virtualSize: 3 * 512}}
	l2 := make([]byte, 512)
	be := binary.BigEndian
	be.PutUint64(l2[0:], 1024|1<<63)
	be.PutUint64(l2[8:], 2048|qcowZeroFlag)
	be.PutUint64(l2[24:], 4096) // guest 1536: past the virtual size
	if err := m.addClusters(l2, 0, 1<<20); err != nil {
		t.Fatal(err)
	}
	if len(m.regions) != 1 || m.regions[0].off != 1024 || m.regions[0].guest != 0 {
		t.Errorf("regions %+v", m.regions)
	}
	be.PutUint64(l2[16:], 8192|qcowCompressed)
	if err := m.addClusters(l2, 0, 1<<20); !errors.Is(err, ErrUnsupported) {
		t.Errorf("compressed: %v", err)
	}
}
