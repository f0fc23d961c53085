package exporter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
)

// ErrUnsupported: --format raw cannot convert this image.
var ErrUnsupported = errors.New("cannot convert to raw")

// rangeReader reads a range of the disk file through its own request.
type rangeReader func(ctx context.Context, off, n int64) ([]byte, error)

// mapper reads the metadata of one disk format by range and lists what the
// sequential pass must read.
type mapper func(ctx context.Context, read rangeReader, fileSize int64) (*diskMap, error)

// inflate decodes a compressed piece of the disk file into dst, which it
// must fill exactly.
type inflate func(dst, src []byte) error

// region is a piece of the disk file met in the sequential pass: metadata
// already read by range (compared, so the layer digest vouches for what
// the map was built from) or data for the guest at guest.
type region struct {
	off   int64
	n     int64  // bytes of the file: len(meta), or the data as stored
	meta  []byte // metadata read by range; nil for data
	guest int64  // data: offset in the raw output
	size  int64  // data: bytes it holds for the guest (a cluster, a grain)
	// decode, when set, inflates the n stored bytes into size bytes. The
	// n bytes may be an upper bound that overlaps the next region (qcow2
	// packs compressed clusters byte by byte).
	decode inflate
}

// diskMap is what a conversion to raw needs of a disk file.
type diskMap struct {
	virtualSize int64
	regions     []region
}

func (m *diskMap) addMeta(off int64, b []byte) {
	m.regions = append(m.regions, region{off: off, n: int64(len(b)), meta: b})
}

// fileRoom bounds what a mapper lists by the size of the file. In a file
// the format's tools wrote, every table read and every piece of data
// listed takes a place of its own, so together they take no more bytes
// than the file has, but for the last piece, which the end of the file may
// cut. A hostile table that lists the same place again and again would
// otherwise make the map (a region is about 80 bytes, a table is held
// whole) far larger than the file, up to exhausting the memory.
type fileRoom struct {
	fileSize int64
	left     int64 // bytes not yet taken, the slack for the last piece included
}

// newFileRoom is the room of a file whose tables and data begin at start,
// with slack bytes for a last piece cut by the end of the file.
func newFileRoom(fileSize, start, slack int64) fileRoom {
	return fileRoom{fileSize: fileSize, left: max(0, fileSize-start) + slack}
}

// take counts n bytes for one more table or piece of data; listed says
// what the map lists ("the vdi block map lists more blocks").
func (r *fileRoom) take(n int64, listed string) error {
	if r.left -= n; r.left < 0 {
		return fmt.Errorf("%w: %s than its %d bytes can hold", ErrUnsupported, listed, r.fileSize)
	}
	return nil
}

// maxRun bounds the data stored as is that addData merges into one region:
// the window holds a region whole.
const maxRun = 2 << 20

// addData lists data; a piece stored as is right after the last one, in
// the file and in the guest, extends it, so that a disk written in order
// costs a region per few MiB, not per cluster (80 bytes each: a TiB of
// 64 KiB clusters would take over a GiB).
func (m *diskMap) addData(off, n, guest, size int64, decode inflate) {
	if k := len(m.regions); k > 0 && decode == nil && n == size {
		last := &m.regions[k-1]
		if last.meta == nil && last.decode == nil && last.n == last.size &&
			last.off+last.n == off && last.guest+last.size == guest && last.n+n <= maxRun {
			last.n += n
			last.size += size
			return
		}
	}
	m.regions = append(m.regions, region{off: off, n: n, guest: guest, size: size, decode: decode})
}

// sortRegions puts the regions in file order; equal offsets keep the order
// they were listed in.
func (m *diskMap) sortRegions() {
	sort.SliceStable(m.regions, func(a, b int) bool { return m.regions[a].off < m.regions[b].off })
}

// writerAt is the sparse output.
type writerAt interface {
	WriteAt(p []byte, off int64) (int, error)
}

// convert reads the disk file once, in order: it compares the metadata met
// with what was read by range and writes each piece of data that is not
// all zeros at its guest offset. What is not written stays a hole.
func (m *diskMap) convert(src io.Reader, size int64, out writerAt) error {
	// One buffer for the largest region, allocated once: growing it
	// region by region left megabytes of garbage for the collector, and
	// the heap peaked at twice the live data.
	w := &window{src: src, buf: make([]byte, 0, m.largest(size))}
	var plain []byte
	for _, r := range m.regions {
		b, err := w.span(r.off, min(r.off+r.n, size))
		if err != nil {
			return err
		}
		switch {
		case r.meta != nil:
			if !bytes.Equal(b, r.meta) {
				return fmt.Errorf("%w: the metadata at %d differs from the layer's", ErrDigestMismatch, r.off)
			}
			continue
		case r.decode != nil:
			if int64(cap(plain)) < r.size {
				plain = make([]byte, r.size)
			}
			if err := r.decode(plain[:r.size], b); err != nil {
				return fmt.Errorf("%w: the compressed data at %d: %v", ErrUnsupported, r.off, err)
			}
			b = plain[:r.size]
		}
		if err := writeData(out, b, r.guest, m.virtualSize); err != nil {
			return err
		}
	}
	return w.discardTo(size)
}

// zeroBlock is the size of the pieces of data written or left as holes:
// the page of most filesystems, and what qemu-img convert skips by default
// (-S 4k).
const zeroBlock = 4096

// largest is the most bytes of the file one region spans.
func (m *diskMap) largest(size int64) int64 {
	var n int64
	for _, r := range m.regions {
		n = max(n, min(r.n, size-r.off))
	}
	return n
}

// writeData writes data cut at the virtual size, but for the all-zero
// blocks (a hole reads the same and takes no space), in one write per
// stretch of blocks that are not.
func writeData(out writerAt, b []byte, guest, virtualSize int64) error {
	b = b[:max(0, min(int64(len(b)), virtualSize-guest))]
	start := -1 // of the stretch being gathered
	for i := 0; i < len(b); i += zeroBlock {
		end := min(i+zeroBlock, len(b))
		if !bytes.Equal(b[i:end], zeros[:end-i]) {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			if _, err := out.WriteAt(b[start:i], guest+int64(start)); err != nil {
				return err
			}
			start = -1
		}
	}
	if start >= 0 {
		_, err := out.WriteAt(b[start:], guest+int64(start))
		return err
	}
	return nil
}

// window serves ranges of a sequential reader in ascending order of their
// start; ranges may overlap the one before: a compressed cluster or grain
// is listed with the most bytes its data may take, which can reach into
// the next. The tables of a file its tools wrote never list a place twice
// (qcow2's active tables do not share a cluster even with internal
// snapshots: a shared one is copied before it is written).
type window struct {
	src   io.Reader
	buf   []byte // the file from start on
	start int64
}

// span returns the file's bytes [off, end).
func (w *window) span(off, end int64) ([]byte, error) {
	if off < w.start || end < off {
		return nil, fmt.Errorf("%w: the map goes back from %d to %d", ErrUnsupported, w.start, min(off, end))
	}
	if have := w.start + int64(len(w.buf)); off >= have {
		if err := w.discardTo(off); err != nil {
			return nil, err
		}
	} else {
		// Keep the overlap at the front of the buffer.
		w.buf = w.buf[:copy(w.buf, w.buf[off-w.start:])]
		w.start = off
	}
	if need := end - off; need > int64(len(w.buf)) {
		if need > int64(cap(w.buf)) {
			w.buf = append(make([]byte, 0, need), w.buf...)
		}
		n := len(w.buf)
		w.buf = w.buf[:need]
		if _, err := io.ReadFull(w.src, w.buf[n:]); err != nil {
			return nil, fmt.Errorf("reading the disk file at %d: %w", off+int64(n), err)
		}
	}
	return w.buf[:end-off], nil
}

// discardTo skips the file up to off.
func (w *window) discardTo(off int64) error {
	have := w.start + int64(len(w.buf))
	if off < have {
		return nil
	}
	if _, err := io.CopyN(io.Discard, w.src, off-have); err != nil {
		return fmt.Errorf("reading the disk file at %d: %w", have, err)
	}
	w.buf, w.start = w.buf[:0], off
	return nil
}
