package diskformat

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// xz stream layout (tukaani.org xz-file-format): a 12-byte stream header,
// blocks (each padded to 4 bytes), an index listing every block's unpadded
// and uncompressed size, and a 12-byte footer whose backward size locates
// the index. Streams may be concatenated, separated by zero padding in
// multiples of 4 bytes.
const (
	xzStreamHeader = 12
	xzFooter       = 12
	xzLZMA2        = 0x21
)

var xzMagic = []byte("\xfd7zXZ\x00")

// xzUnpackedSize returns the decompressed length of an xz file of total
// bytes from its first bytes (head) and its last bytes (tail), walking the
// streams backwards from the end. The streams' declared sizes must add up
// to exactly total: a cut file has no footer at its end, or sizes that do
// not fit. Streams whose index lies before the tail cannot be read.
func xzUnpackedSize(head, tail []byte, total int64) (int64, error) {
	base := total - int64(len(tail)) // absolute offset of tail[0]
	end := total
	var unpacked int64
	for streams := 0; ; streams++ {
		var err error
		if end, err = xzSkipPadding(tail, base, end); err != nil {
			return 0, err
		}
		if end == 0 && streams > 0 {
			return unpacked, nil
		}
		start, n, err := xzStream(tail, base, end, streams == 0)
		if err != nil {
			return 0, err
		}
		if unpacked += n; unpacked > maxOffset {
			return 0, fmt.Errorf("%w: the xz index declares an impossible size", ErrCorrupt)
		}
		if start == 0 {
			return unpacked, xzCheckHeader(head, tail[end-xzFooter-base:end-base])
		}
		end = start
	}
}

// xzSkipPadding steps back over stream padding before end.
func xzSkipPadding(tail []byte, base, end int64) (int64, error) {
	pad := int64(0)
	for end-pad-1 >= base && tail[end-pad-1-base] == 0 {
		pad++
	}
	if pad%4 != 0 {
		return 0, fmt.Errorf("%w: the xz stream ends with %d stray zero bytes", ErrCorrupt, pad)
	}
	return end - pad, nil
}

// xzStream reads the footer and index of the stream ending at end and
// returns where the stream starts and its decompressed length.
func xzStream(tail []byte, base, end int64, last bool) (int64, int64, error) {
	if end-xzFooter < base || end < xzStreamHeader+xzFooter {
		return 0, 0, xzNoFooter(last, "the data is too short for an xz stream")
	}
	f := tail[end-xzFooter-base : end-base]
	if string(f[10:]) != "YZ" || crc32.ChecksumIEEE(f[4:10]) != binary.LittleEndian.Uint32(f) {
		return 0, 0, xzNoFooter(last, "no valid stream footer at its end")
	}
	backward := (int64(binary.LittleEndian.Uint32(f[4:])) + 1) * 4
	idxStart := end - xzFooter - backward
	if idxStart < base || idxStart < xzStreamHeader {
		return 0, 0, fmt.Errorf("%w: the xz index (%d bytes) lies before the last %d bytes kept; cannot tell the unpacked size",
			ErrUnsupportedFormat, backward, len(tail))
	}
	blocks, unpacked, err := xzIndex(tail[idxStart-base : end-xzFooter-base])
	if err != nil {
		return 0, 0, err
	}
	start := idxStart - blocks - xzStreamHeader
	if start < 0 {
		return 0, 0, fmt.Errorf("%w: the xz stream declares %d bytes of blocks but fewer arrived", ErrTruncated, blocks)
	}
	return start, unpacked, nil
}

func xzNoFooter(last bool, why string) error {
	if last {
		return fmt.Errorf("%w: the xz stream is cut: %s", ErrTruncated, why)
	}
	return fmt.Errorf("%w: the xz streams' sizes do not add up to the bytes received (%s)", ErrCorrupt, why)
}

// xzIndex parses an index and returns the blocks' total padded size and
// their total decompressed size.
func xzIndex(idx []byte) (int64, int64, error) {
	bad := func(why string) (int64, int64, error) {
		return 0, 0, fmt.Errorf("%w: the xz index is damaged: %s", ErrCorrupt, why)
	}
	if len(idx) < 8 || idx[0] != 0 {
		return bad("no index indicator")
	}
	body, sum := idx[:len(idx)-4], binary.LittleEndian.Uint32(idx[len(idx)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return bad("CRC32 mismatch")
	}
	r := bytes.NewReader(body[1:])
	count, err := binary.ReadUvarint(r)
	if err != nil || count > uint64(len(body)) {
		return bad("bad record count")
	}
	var blocks, unpacked int64
	for range count {
		u, err1 := binary.ReadUvarint(r)
		n, err2 := binary.ReadUvarint(r)
		if err1 != nil || err2 != nil || u == 0 || u > uint64(maxOffset) || n > uint64(maxOffset) {
			return bad("bad record")
		}
		blocks += (int64(u) + 3) &^ 3
		unpacked += int64(n)
		if blocks > maxOffset || unpacked > maxOffset {
			return bad("impossible sizes")
		}
	}
	for r.Len() > 0 {
		if b, _ := r.ReadByte(); b != 0 {
			return bad("non-zero padding")
		}
	}
	if (len(body))%4 != 0 {
		return bad("misaligned")
	}
	return blocks, unpacked, nil
}

// xzCheckHeader compares the first stream's header with its footer.
func xzCheckHeader(head, footer []byte) error {
	if len(head) < xzStreamHeader || !bytes.HasPrefix(head, xzMagic) ||
		crc32.ChecksumIEEE(head[6:8]) != binary.LittleEndian.Uint32(head[8:]) {
		return fmt.Errorf("%w: the xz stream header is damaged", ErrCorrupt)
	}
	if !bytes.Equal(head[6:8], footer[8:10]) {
		return fmt.Errorf("%w: the xz stream header and footer disagree", ErrCorrupt)
	}
	return nil
}

// xzCheckDict refuses a first block whose LZMA2 dictionary is larger than
// xzMaxDict: the xz library allocates the declared dictionary up front.
// Later blocks are not checked (xz writes the same size in every block).
func xzCheckDict(br *bufio.Reader) error {
	b, _ := br.Peek(xzStreamHeader + 1024)
	if len(b) < xzStreamHeader+2 || b[xzStreamHeader] == 0 {
		return nil // too short or no block: the decoder will say
	}
	hdr := b[xzStreamHeader:]
	size := (int(hdr[0]) + 1) * 4
	if size > len(hdr) {
		return nil
	}
	r := bytes.NewReader(hdr[2:size])
	flags := hdr[1]
	for _, bit := range []byte{0x40, 0x80} { // compressed, uncompressed size
		if flags&bit != 0 {
			if _, err := binary.ReadUvarint(r); err != nil {
				return nil
			}
		}
	}
	for range int(flags&3) + 1 {
		id, err1 := binary.ReadUvarint(r)
		n, err2 := binary.ReadUvarint(r)
		if err1 != nil || err2 != nil || n > uint64(r.Len()) {
			return nil
		}
		props := make([]byte, n)
		_, _ = r.Read(props)
		if id == xzLZMA2 && n == 1 && props[0] <= 40 {
			if d := xzDictSize(props[0]); d > xzMaxDict {
				return fmt.Errorf("%w: the xz dictionary of %d MiB is larger than the %d MiB accepted", ErrUnsupportedFormat, d>>20, xzMaxDict>>20)
			}
		}
	}
	return nil
}

func xzDictSize(p byte) int64 {
	if p == 40 {
		return 1<<32 - 1
	}
	return int64(2|p&1) << (p/2 + 11)
}
