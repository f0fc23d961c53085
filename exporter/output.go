package exporter

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// output is where the disk file goes: a file written in place (so that
// --continue can pick it up) or a writer; it hashes what it holds.
type output struct {
	name    string   // as the user named it; "-" for the writer
	f       *os.File // nil for the writer
	w       io.Writer
	hash    hash.Hash
	written int64 // bytes the output holds
	total   int64 // bytes it will hold; -1 when unknown (decompressing)
}

// openOutput opens file ("" : defaultName; a directory: defaultName in it;
// "-": stdout). With cont the file is kept, not truncated.
func openOutput(file, defaultName string, cont bool, stdout io.Writer, total int64) (*output, error) {
	o := &output{name: file, hash: sha256.New(), total: total}
	if file == "-" {
		o.w = stdout
		return o, nil
	}
	if file == "" {
		o.name = defaultName
	} else if st, err := os.Stat(file); err == nil && st.IsDir() {
		o.name = filepath.Join(file, defaultName)
	}
	flags := os.O_RDWR | os.O_CREATE | os.O_TRUNC // read back by rehash
	if cont {
		flags = os.O_RDWR | os.O_CREATE
	}
	f, err := os.OpenFile(o.name, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the output: %w", err)
	}
	o.f, o.w = f, f
	return o, nil
}

// Write writes, hashes and counts; a write error names the file and how
// far it got.
func (o *output) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	o.hash.Write(p[:n])
	o.written += int64(n)
	if err != nil {
		return n, o.writeError(err)
	}
	return n, nil
}

func (o *output) writeError(err error) error {
	of := ""
	if o.total >= 0 {
		of = fmt.Sprintf(" of %d", o.total)
	}
	if errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("writing %s: %w: %d bytes written%s", o.name, syscall.ENOSPC, o.written, of)
	}
	return fmt.Errorf("writing %s: %w (%d bytes written%s)", o.name, err, o.written, of)
}

// resume reads back the bytes the file already holds into the hashes
// (layer and output) and positions the file after them. A file larger than
// size cannot be a prefix of the disk file.
func (o *output) resume(size int64, layer io.Writer) (int64, error) {
	st, err := o.f.Stat()
	if err != nil {
		return 0, err
	}
	if !st.Mode().IsRegular() {
		return 0, fmt.Errorf("--continue: %s is not a regular file", o.name)
	}
	k := st.Size()
	if k > size {
		return 0, fmt.Errorf("--continue: %s holds %d bytes, more than the image's disk file (%d bytes): it is not an interrupted export of this image", o.name, k, size)
	}
	if _, err := io.Copy(io.MultiWriter(layer, o.hash), io.NewSectionReader(o.f, 0, k)); err != nil {
		return 0, fmt.Errorf("--continue: reading %s: %w", o.name, err)
	}
	if _, err := o.f.Seek(k, io.SeekStart); err != nil {
		return 0, err
	}
	o.written = k
	return k, nil
}

// finish syncs and closes a file.
func (o *output) finish() error {
	if o.f == nil {
		return nil
	}
	err := o.f.Sync()
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return o.writeError(err)
	}
	return nil
}

// abandon closes a file after a failure, keeping what it holds.
func (o *output) abandon() {
	if o.f != nil {
		_ = o.f.Close()
	}
}

// WriteAt writes a piece of a sparse file; the hash is made at the end
// (rehash), the count is of the bytes written.
func (o *output) WriteAt(p []byte, off int64) (int, error) {
	n, err := o.f.WriteAt(p, off)
	o.written += int64(n)
	if err != nil {
		return n, o.writeError(err)
	}
	return n, nil
}

// rehash hashes the file as written, its holes as zeros without reading
// them: reading a hole fills the page cache with zeros, which costs more
// than the hashing (a 10 GiB image holding 1 GiB would be read whole).
func (o *output) rehash(size int64) error {
	o.hash.Reset()
	if err := hashSparse(o.hash, o.f, size); err != nil {
		return fmt.Errorf("reading back %s: %w", o.name, err)
	}
	o.written = size
	return nil
}

// hashSparse writes the first size bytes of f into h, the data read and
// the holes (by SEEK_DATA) as zeros from a shared buffer. A file system
// without SEEK_DATA says all is data.
func hashSparse(h io.Writer, f *os.File, size int64) error {
	for off := int64(0); off < size; {
		data, err := f.Seek(off, unix.SEEK_DATA)
		switch {
		case errors.Is(err, syscall.ENXIO):
			data = size // a hole to the end
		case err != nil:
			data = off
		}
		data = min(data, size)
		for off < data {
			n, _ := h.Write(zeros[:min(int64(len(zeros)), data-off)])
			off += int64(n)
		}
		if off >= size {
			break
		}
		hole, err := f.Seek(off, unix.SEEK_HOLE)
		if err != nil || hole <= off {
			hole = size
		}
		n, err := io.Copy(h, io.NewSectionReader(f, off, min(hole, size)-off))
		if err != nil {
			return err
		}
		if n < min(hole, size)-off {
			return fmt.Errorf("%w at %d", io.ErrUnexpectedEOF, off+n)
		}
		off += n
	}
	return nil
}

// zeros: the holes' bytes for hashSparse, and what writeData compares a
// block with (bytes.Equal is vectorized).
var zeros = make([]byte, 64<<10)
