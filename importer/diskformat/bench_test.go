package diskformat

import "testing"

// BenchmarkInspectRaw measures plain (uncompressed) inspection as the
// importer feeds it: 8 MiB writes of a raw disk.
func BenchmarkInspectRaw(b *testing.B) {
	const chunk, chunks = 8 << 20, 16
	buf := randomBytes(7, chunk)
	clear(buf[:64<<10]) // a raw disk: no magic in the head
	b.SetBytes(chunk * chunks)
	b.ReportAllocs()
	for b.Loop() {
		in := NewInspector()
		for range chunks {
			if _, err := in.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := in.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInspectGzipRaw is for information: MB/s of compressed input
// through the decoder goroutine.
func BenchmarkInspectGzipRaw(b *testing.B) {
	raw := randomBytes(8, 32<<20)
	clear(raw[:16<<20])
	gz := gzipOf(raw)
	b.SetBytes(int64(len(gz)))
	for b.Loop() {
		if _, err := feedChunks(gz, 8<<20); err != nil {
			b.Fatal(err)
		}
	}
}
