package exporter

import (
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestHashSparse: the hash of a sparse file, holes hashed without being
// read, is that of all its bytes, wherever the data and holes lie.
func TestHashSparse(t *testing.T) {
	const size = 5<<20 + 777
	for _, c := range []struct {
		name   string
		writes []int64 // offsets of 10 KiB of data
		hashed int64   // bytes hashed; size unless less
	}{
		{"all hole", nil, size},
		{"data at the start", []int64{0}, size},
		{"data in the middle", []int64{2<<20 + 3}, size},
		{"data at the end", []int64{size - 10<<10}, size},
		{"data everywhere", []int64{0, 1 << 20, 2 << 20, 3 << 20, 4 << 20, 5 << 20}, size},
		{"hashed up to the middle", []int64{0, 3 << 20}, 3<<20 + 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "f"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := f.Truncate(size); err != nil {
				t.Fatal(err)
			}
			for i, off := range c.writes {
				b := make([]byte, 10<<10)
				for j := range b {
					b[j] = byte(i + j%251 + 1)
				}
				if _, err := f.WriteAt(b, off); err != nil {
					t.Fatal(err)
				}
			}
			want := sha256.New()
			if _, err := io.Copy(want, io.NewSectionReader(f, 0, c.hashed)); err != nil {
				t.Fatal(err)
			}
			got := sha256.New()
			if err := hashSparse(got, f, c.hashed); err != nil {
				t.Fatal(err)
			}
			if string(got.Sum(nil)) != string(want.Sum(nil)) {
				t.Error("the hashes differ")
			}
		})
	}
}
