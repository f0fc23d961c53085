package exporter

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zstd"
)

// qcowHeader is a v3 header: 64 KiB clusters, 1 GiB, L1 of 2 entries at 196608.
func qcowHeader() []byte {
	h := make([]byte, qcowHeaderRead)
	be := binary.BigEndian
	copy(h, qcowMagic)
	be.PutUint32(h[4:], 3)
	be.PutUint32(h[20:], 16)
	be.PutUint64(h[24:], 1<<30)
	be.PutUint32(h[36:], 2)
	be.PutUint64(h[40:], 3<<16)
	be.PutUint32(h[100:], qcowHeaderRead)
	return h
}

// TestParseQcow2Header: what the conversion does not follow is refused by
// name; the compression type is read when the header is long enough and
// must agree with its feature bit, as qemu requires.
func TestParseQcow2Header(t *testing.T) {
	be := binary.BigEndian
	for _, c := range []struct {
		name string
		edit func(h []byte)
		comp byte
		err  string
	}{
		{"plain", func(h []byte) {}, qcowZlib, ""},
		{"dirty", func(h []byte) { be.PutUint64(h[72:], qcowDirtyBit) }, qcowZlib, ""},
		{"zstd", func(h []byte) { be.PutUint64(h[72:], qcowCompTypeBit); h[104] = qcowZstd }, qcowZstd, ""},
		{"v2 ignores the v3 fields", func(h []byte) { be.PutUint32(h[4:], 2); be.PutUint64(h[72:], 0xff); h[104] = 9 }, qcowZlib, ""},
		{"short header means zlib", func(h []byte) { be.PutUint32(h[100:], qcowHeaderLen); h[104] = qcowZstd }, qcowZlib, ""},
		{"zstd without the bit", func(h []byte) { h[104] = qcowZstd }, 0, "compression type 1 without the compression type feature bit"},
		{"bit without zstd", func(h []byte) { be.PutUint64(h[72:], qcowCompTypeBit) }, 0, "compression type feature bit with compression type 0 (zlib)"},
		{"bit, header too short for the type", func(h []byte) { be.PutUint64(h[72:], qcowCompTypeBit); be.PutUint32(h[100:], 104); h[104] = 1 }, 0, "compression type feature bit with compression type 0"},
		{"unknown type", func(h []byte) { be.PutUint64(h[72:], qcowCompTypeBit); h[104] = 2 }, 0, "qcow2 compression type 2"},
		{"corrupt", func(h []byte) { be.PutUint64(h[72:], qcowCorruptBit) }, 0, "incompatible features 0x2 (corrupt)"},
		{"external data file", func(h []byte) { be.PutUint64(h[72:], 0x4) }, 0, "incompatible features 0x4 (external data file)"},
		{"extended L2", func(h []byte) { be.PutUint64(h[72:], 0x11) }, 0, "incompatible features 0x10 (extended L2)"},
		{"unknown feature", func(h []byte) { be.PutUint64(h[72:], 0x28) }, 0, "incompatible features 0x20 (unknown 0x20)"},
		{"backing file", func(h []byte) { be.PutUint64(h[8:], 512) }, 0, "backing file"},
		{"encrypted", func(h []byte) { be.PutUint32(h[32:], 2) }, 0, "encrypted"},
		{"version 4", func(h []byte) { be.PutUint32(h[4:], 4) }, 0, "version 4"},
		{"short L1", func(h []byte) { be.PutUint32(h[36:], 1) }, 0, "L1 table of 1 entries"},
		{"cluster bits 30", func(h []byte) { be.PutUint32(h[20:], 30) }, 0, "cluster bits 30"},
		{"not qcow2", func(h []byte) { h[0] = 'X' }, 0, "not a qcow2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := qcowHeader()
			c.edit(h)
			m, l1Off, l1Size, err := parseQcow2Header(h, 1<<20)
			if c.err != "" {
				if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), c.err) {
					t.Errorf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.clusterSize != 65536 || m.clusterBits != 16 || m.virtualSize != 1<<30 || l1Off != 196608 || l1Size != 2 || m.compType != c.comp {
				t.Errorf("%+v %d %d", m, l1Off, l1Size)
			}
		})
	}
	if _, _, _, err := parseQcow2Header(qcowHeader()[:100], 1<<20); err == nil || !strings.Contains(err.Error(), "short qcow2 v3 header") {
		t.Errorf("100-byte v3 header: %v", err)
	}
}

// TestQcow2Compressed: the host offset takes the low 62-(cluster_bits-8)
// bits, the additional sectors the bits above up to 61; the stored length
// runs from the offset to the end of its last sector.
func TestQcow2Compressed(t *testing.T) {
	for _, c := range []struct {
		name    string
		bits    uint
		host    uint64
		sectors uint64 // additional sectors, as stored
		wantN   int64
	}{
		{"64k, aligned, one sector", 16, 0x50000, 0, 512},
		{"64k, mid-sector", 16, 0x50123, 3, 4*512 - 0x123},
		{"64k, most sectors", 16, 1<<54 - 1, 255, 256*512 - 511},
		{"4k, last byte of a sector", 12, 0x31ff, 1, 2*512 - 511},
		{"512, one bit of sectors", 9, 0x12345, 1, 2*512 - 0x145},
		{"2M, thirteen bits of sectors", 21, 0x7fe00, 1<<13 - 1, 1 << 22},
	} {
		t.Run(c.name, func(t *testing.T) {
			x := 62 - (c.bits - 8)
			e := qcowCompressed | 1<<63 | c.sectors<<x | c.host
			host, n := qcow2Compressed(e, c.bits)
			if host != int64(c.host) || n != c.wantN {
				t.Errorf("entry %#x: host %#x n %d, want %#x %d", e, host, n, c.host, c.wantN)
			}
		})
	}
}

// TestAddClusters: zero-flag and unallocated entries are holes, the last
// cluster past the virtual size is not listed, a compressed one is listed
// with its upper bound and the decoder.
func TestAddClusters(t *testing.T) {
	be := binary.BigEndian
	for _, c := range []struct {
		name  string
		entry uint64 // at guest 512
		want  []region
		err   string
	}{
		{"unallocated", 0, nil, ""},
		{"zero flag", 2048 | qcowZeroFlag, nil, ""},
		{"standard", 2048, []region{{off: 2048, n: 512, guest: 512, size: 512}}, ""},
		{"compressed", qcowCompressed | 1<<61 | 3000, []region{{off: 3000, n: 1024 - 3000%512, guest: 512, size: 512}}, ""},
		{"compressed at the end", qcowCompressed | 4095, []region{{off: 4095, n: 1, guest: 512, size: 512}}, ""},
		{"compressed past the end", qcowCompressed | 4096, nil, "compressed cluster at 4096 is past the end"},
		{"standard past the end", 4096, nil, "cluster at 4096 is past the end"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := &qcow2Map{clusterBits: 9, clusterSize: 512, diskMap: diskMap{virtualSize: 3 * 512}, room: newFileRoom(4096, 0, 512)}
			l2 := make([]byte, 512)
			be.PutUint64(l2[8:], c.entry)
			be.PutUint64(l2[24:], 1024) // guest 1536: past the virtual size
			err := m.addClusters(l2, 0, 4096)
			if c.err != "" {
				if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), c.err) {
					t.Errorf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(m.regions) != len(c.want) {
				t.Fatalf("regions %+v, want %+v", m.regions, c.want)
			}
			for i, r := range m.regions {
				w := c.want[i]
				if r.off != w.off || r.n != w.n || r.guest != w.guest || r.size != w.size || (r.decode != nil) != (c.entry&qcowCompressed != 0) {
					t.Errorf("region %+v, want %+v", r, w)
				}
			}
		})
	}
}

// compressCluster compresses data as qemu does: a raw deflate stream
// (zlib type) or zstd frames, split in parts frames when parts > 1.
func compressCluster(t testing.TB, compType byte, data []byte, parts int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if compType == qcowZlib {
		w, err := flate.NewWriter(&buf, flate.DefaultCompression)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil || w.Close() != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for i := range parts {
		out = enc.EncodeAll(data[i*len(data)/parts:(i+1)*len(data)/parts], out)
	}
	return out
}

// clusterData is a cluster of text that compresses about 3:1, different
// for each seed.
func clusterData(size, seed int) []byte {
	var b bytes.Buffer
	words := []string{"qcow2 ", "cluster ", "sector ", "zlib ", "zstd ", "guest ", "host ", "offset "}
	for i := seed; b.Len() < size; i++ {
		fmt.Fprintf(&b, "%s%d ", words[(i*7+i/3)%len(words)], i*i%9973)
	}
	return b.Bytes()[:size]
}

// TestQcow2Inflate: a cluster decodes whatever follows its stream (the
// stored length is an upper bound); a stream that ends before the cluster
// is full, or is broken, is an error that says how far it got; decoding
// allocates nothing once the decoder is warm.
func TestQcow2Inflate(t *testing.T) {
	const size = 65536
	data, next := clusterData(size, 1), clusterData(size, 2)
	for _, c := range []struct {
		name string
		comp byte
		src  func(c []byte) []byte // the stored bytes, given the compressed cluster
		err  string
	}{
		{"zlib alone", qcowZlib, func(c []byte) []byte { return c }, ""},
		{"zlib, next cluster after", qcowZlib, func(c []byte) []byte { return append(c, compressCluster(t, qcowZlib, next, 1)[:300]...) }, ""},
		{"zlib, garbage after", qcowZlib, func(c []byte) []byte { return append(c, 0xff, 0xff, 0xff) }, ""},
		{"zlib short", qcowZlib, func([]byte) []byte { return compressCluster(t, qcowZlib, data[:size/2], 1) }, "32768 bytes of a 65536-byte cluster: unexpected EOF"},
		{"zlib cut", qcowZlib, func(c []byte) []byte { return c[:len(c)/2] }, "bytes of a 65536-byte cluster"},
		{"zstd alone", qcowZstd, func(c []byte) []byte { return c }, ""},
		{"zstd, next cluster after", qcowZstd, func(c []byte) []byte { return append(c, compressCluster(t, qcowZstd, next, 1)[:300]...) }, ""},
		{"zstd, zeros after", qcowZstd, func(c []byte) []byte { return append(c, make([]byte, 511)...) }, ""},
		{"zstd in two frames", qcowZstd, func([]byte) []byte { return compressCluster(t, qcowZstd, data, 2) }, ""},
		{"zstd short", qcowZstd, func([]byte) []byte { return compressCluster(t, qcowZstd, data[:size/2], 1) }, "32768 bytes of a 65536-byte cluster"},
		{"zstd cut", qcowZstd, func(c []byte) []byte { return c[:len(c)/2] }, "bytes of a 65536-byte cluster"},
	} {
		t.Run(c.name, func(t *testing.T) {
			decode, err := qcow2Inflate(c.comp)
			if err != nil {
				t.Fatal(err)
			}
			src := c.src(compressCluster(t, c.comp, data, 1))
			dst := make([]byte, size)
			err = decode(dst, src)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Errorf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || !bytes.Equal(dst, data) {
				t.Fatalf("decoded %v, equal %v", err, bytes.Equal(dst, data))
			}
			if n := testing.AllocsPerRun(20, func() { _ = decode(dst, src) }); n != 0 && !raceEnabled {
				t.Errorf("%v allocations per cluster", n)
			}
		})
	}
}

// compressedQcow2 is a v3 qcow2 with 4 KiB clusters and a virtual size
// of 3.25 clusters: guest cluster 0 unallocated, 1 stored as is, 2 and 3
// compressed back to back in the same sector, the file ending where the
// last stream does (its upper bound runs past the end). It returns the
// file and the raw image.
func compressedQcow2(t *testing.T, compType byte) (file, want []byte) {
	const cs, vsize = 4096, 3*4096 + 1024
	be := binary.BigEndian
	h := qcowHeader()
	be.PutUint32(h[20:], 12)
	be.PutUint64(h[24:], vsize)
	be.PutUint32(h[36:], 1)
	be.PutUint64(h[40:], cs)
	if compType == qcowZstd {
		be.PutUint64(h[72:], qcowCompTypeBit)
		h[104] = qcowZstd
	}
	file = make([]byte, 4*cs)
	copy(file, h)
	be.PutUint64(file[cs:], 2*cs|1<<63) // L1[0]: the L2 table
	want = make([]byte, 4*cs)
	copy(file[3*cs:], clusterData(cs, 1))
	copy(want[cs:], clusterData(cs, 1))
	be.PutUint64(file[2*cs+8:], 3*cs|1<<63) // L2: guest cluster 1
	for i := int64(2); i < 4; i++ {
		data := clusterData(cs, int(i))
		copy(want[i*cs:], data)
		c := compressCluster(t, compType, data, 1)
		host := uint64(len(file))
		be.PutUint64(file[2*cs+i*8:], qcowCompressed|uint64(len(c)-1+int(host%512))/512<<58|host)
		file = append(file, c...)
	}
	return file, want[:vsize]
}

// TestConvertCompressedQcow2: mapped by range and converted in one pass,
// compressed clusters that share a sector and the last one's bound past
// the end of the file give the raw image.
func TestConvertCompressedQcow2(t *testing.T) {
	for _, c := range []struct {
		name string
		comp byte
	}{{"zlib", qcowZlib}, {"zstd", qcowZstd}} {
		t.Run(c.name, func(t *testing.T) {
			file, want := compressedQcow2(t, c.comp)
			read := func(_ context.Context, off, n int64) ([]byte, error) {
				return bytes.Clone(file[off : off+n]), nil
			}
			m, err := mapQcow2(context.Background(), read, int64(len(file)))
			if err != nil {
				t.Fatal(err)
			}
			if last := m.regions[len(m.regions)-1]; last.off+last.n <= int64(len(file)) {
				t.Fatalf("the last region %+v ends within the file of %d bytes", last, len(file))
			}
			out := &memWriter{}
			if err := m.convert(bytes.NewReader(file), int64(len(file)), out); err != nil {
				t.Fatal(err)
			}
			got := append(out.b, make([]byte, len(want)-len(out.b))...)
			if !bytes.Equal(got, want) {
				t.Error("the converted image differs")
			}
		})
	}
}

// BenchmarkQcow2Inflate: the decoding of one 64 KiB cluster, which must
// not allocate.
func BenchmarkQcow2Inflate(b *testing.B) {
	data := clusterData(65536, 1)
	for _, c := range []struct {
		name string
		comp byte
	}{{"zlib", qcowZlib}, {"zstd", qcowZstd}} {
		b.Run(c.name, func(b *testing.B) {
			src := compressCluster(b, c.comp, data, 1)
			decode, err := qcow2Inflate(c.comp)
			if err != nil {
				b.Fatal(err)
			}
			dst := make([]byte, len(data))
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if err := decode(dst, src); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
