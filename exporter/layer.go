package exporter

import (
	"archive/tar"
	"fmt"
	"io"
	"path"

	"github.com/dvcr/dvcr/importer"
)

// blockSize is the tar block: entries are padded to it.
const blockSize = 512

// entry is the layer's only tar entry: the disk file.
type entry struct {
	Name      string // the file name under disk/
	Size      int64  // bytes of the disk file
	HeaderLen int64  // bytes of the header blocks: the file starts there
}

// DataOffset is where the disk file's bytes start in the layer.
func (e entry) DataOffset() int64 { return e.HeaderLen }

// MinLayerSize is the smallest layer holding the entry: header, data and
// the padding to the block (the end-of-archive blocks may follow).
func (e entry) MinLayerSize() int64 {
	return e.HeaderLen + e.Size + (blockSize-e.Size%blockSize)%blockSize
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// readEntry reads the header blocks (PAX records included) of the layer's
// first entry from r and no further: archive/tar reads headers a block at a
// time without buffering, so the count is the data's offset.
func readEntry(r io.Reader) (entry, error) {
	cr := &countingReader{r: r}
	hdr, err := tar.NewReader(cr).Next()
	if err != nil {
		return entry{}, fmt.Errorf("%w: the layer is not a tar archive: %w", ErrNotDiskImage, err)
	}
	if hdr.Typeflag != tar.TypeReg {
		return entry{}, fmt.Errorf("%w: the layer's entry %q is not a regular file", ErrNotDiskImage, hdr.Name)
	}
	dir, name := path.Split(hdr.Name)
	if dir != importer.LayerDir+"/" || name == "" || name == "." || name == ".." {
		return entry{}, fmt.Errorf("%w: the layer's entry %q is not %s/<file>", ErrNotDiskImage, hdr.Name, importer.LayerDir)
	}
	if hdr.Size < 0 {
		return entry{}, fmt.Errorf("%w: the layer's entry %q has a negative size", ErrNotDiskImage, hdr.Name)
	}
	return entry{Name: name, Size: hdr.Size, HeaderLen: cr.n}, nil
}

// zeroTail reads the end of the layer after the data and fails on any
// non-zero byte: a second entry would be one.
func zeroTail(r io.Reader) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		for _, b := range buf[:n] {
			if b != 0 {
				return fmt.Errorf("%w: the layer has more than the disk file's entry", ErrNotDiskImage)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
