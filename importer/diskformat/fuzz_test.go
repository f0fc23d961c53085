package diskformat

import (
	"bytes"
	"encoding/binary"
	"hash/fnv"
	"testing"
)

// inspectChunked feeds data in chunk sizes drawn from a generator seeded
// by the data itself, so a failing input replays exactly.
func inspectChunked(data []byte) (Info, error) {
	h := fnv.New64a()
	h.Write(data)
	state := h.Sum64() | 1
	in := NewInspector()
	for len(data) > 0 {
		state ^= state << 13
		state ^= state >> 7
		state ^= state << 17
		n := min(len(data), 1+int(state%70000))
		if state&3 == 0 {
			n = min(len(data), 1+int(state>>8)%64)
		}
		if _, err := in.Write(data[:n]); err != nil {
			in.Abort()
			return Info{}, err
		}
		data = data[n:]
	}
	return in.Close()
}

func seedInputs() [][]byte {
	return [][]byte{
		qcow2Seed(), vmdkSeed(), vdiSeed(), isoSeed(), []byte("raw"),
		gzipOf(qcow2Seed()), xzOf(vmdkSeed()), zstdOf(vdiSeed()), xzOf(isoSeed()),
		[]byte("# Disk DescriptorFile\nRW 8 FLAT \"a.raw\" 0\n"),
	}
}

func FuzzInspect(f *testing.F) {
	for _, s := range seedInputs() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := inspectChunked(data)
		if err == nil && (info.VirtualSize < 0 || info.SourceSize != int64(len(data))) {
			t.Fatalf("impossible info %+v for %d bytes", info, len(data))
		}
	})
}

// FuzzHeaders keeps a format's magic and fuzzes the fields around it, so
// the fuzzer spends its time inside the parsers; kind 4 fuzzes the xz index
// reader directly.
func FuzzHeaders(f *testing.F) {
	templates := [][]byte{qcow2Seed(), vmdkSeed(), vdiSeed(), isoSeed()}
	for i, s := range templates {
		f.Add(uint8(i), s[:min(len(s), 4096)])
	}
	x := xzOf([]byte("hello, world"))
	f.Add(uint8(4), x)
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		if int(kind)%5 == 4 {
			total := int64(len(body))
			if len(body) >= 8 {
				total += int64(binary.LittleEndian.Uint16(body)) // a tail of a longer file
			}
			_, _ = xzUnpackedSize(body, body, total)
			return
		}
		tmpl := templates[int(kind)%5]
		data := bytes.Clone(tmpl)
		magic := map[int][2]int{0: {0, 4}, 1: {0, 4}, 2: {0x40, 0x44}, 3: {16*isoSector + 1, 16*isoSector + 6}}[int(kind)%5]
		for i, b := range body {
			if i >= len(data) {
				data = append(data, b)
			} else if i < magic[0] || i >= magic[1] {
				data[i] = b
			}
		}
		_, _ = inspectChunked(data)
	})
}
