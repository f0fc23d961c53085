package diskformat

import "testing"

// TestVDIVirtualSize: a disk size that is not a whole number of sectors
// counts its last sector whole, as qemu does.
func TestVDIVirtualSize(t *testing.T) {
	for _, c := range []struct{ disk, want int64 }{{1 << 20, 1 << 20}, {1<<20 + 1, 1<<20 + 512}, {1<<20 - 1, 1 << 20}} {
		p := &vdiParser{h: vdiHeader{diskSize: uint64(c.disk)}}
		if got, err := p.finish(0, nil); err != nil || got != c.want {
			t.Errorf("disk size %d: virtual size %d (%v), want %d", c.disk, got, err, c.want)
		}
	}
}
