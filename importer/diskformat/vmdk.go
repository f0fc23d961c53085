package diskformat

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
)

const (
	vmdkGDAtEnd       = ^uint64(0) // streamOptimized: the grain directory is in the footer
	vmdkMaxGrain      = 1 << 16    // sectors (32 MiB)
	vmdkMaxGTEs       = 1 << 16
	vmdkMaxDescriptor = 1 << 20
	vmdkCaptureGD     = 4 << 20
	vmdkMarkerFooter  = 3
	vmdkFlagCompress  = 1 << 16
	vmdkZeroGrain     = 1 // grain table entry of a zeroed grain
)

type vmdkHeader struct {
	version, flags, gtes                        uint32
	capacity, grain, descOff, descSize, rgd, gd uint64
}

func parseVMDKHeader(b []byte) vmdkHeader {
	le := binary.LittleEndian
	return vmdkHeader{
		version: le.Uint32(b[4:]), flags: le.Uint32(b[8:]), capacity: le.Uint64(b[12:]),
		grain: le.Uint64(b[20:]), descOff: le.Uint64(b[28:]), descSize: le.Uint64(b[36:]),
		gtes: le.Uint32(b[44:]), rgd: le.Uint64(b[48:]), gd: le.Uint64(b[56:]),
	}
}

// vmdkParser checks a hosted sparse extent (monolithicSparse or
// streamOptimized) with its embedded descriptor.
type vmdkParser struct {
	h          vmdkHeader
	gdEntries  uint64
	descSeen   bool
	ends       maxEnd
	capture    *capturer
	compressed bool
}

func (v *vmdkParser) headNeed([]byte) int { return 0 }
func (v *vmdkParser) needsAll() bool      { return true }

func (v *vmdkParser) start(e *engine, head []byte) error {
	if len(head) < 512 {
		return fmt.Errorf("%w: vmdk header cut after %d bytes", ErrTruncated, len(head))
	}
	v.capture = &e.capture
	h := parseVMDKHeader(head)
	if err := v.validate(h); err != nil {
		return err
	}
	v.h = h
	v.compressed = h.flags&vmdkFlagCompress != 0
	perGT := h.grain * uint64(h.gtes)
	v.gdEntries = (h.capacity + perGT - 1) / perGT
	if h.descSize == 0 || h.descSize > vmdkMaxDescriptor/512 || h.descOff > uint64(maxOffset)/512 {
		return fmt.Errorf("%w: vmdk sparse extent has no usable embedded descriptor (offset %d, %d sectors); it may be one file of a multi-file disk",
			ErrUnsupportedFormat, h.descOff, h.descSize)
	}
	v.ends.note(int64((h.descOff+h.descSize)*512), "descriptor")
	if err := v.capture.add(int64(h.descOff*512), int64(h.descSize*512), v.onDescriptor); err != nil {
		return err
	}
	if h.gd == vmdkGDAtEnd {
		return nil
	}
	return v.grainDirectory(h.gd, h.rgd)
}

func (v *vmdkParser) validate(h vmdkHeader) error {
	switch {
	case h.version < 1 || h.version > 3:
		return fmt.Errorf("%w: vmdk sparse extent version %d", ErrUnsupportedFormat, h.version)
	case h.grain == 0 || h.grain > vmdkMaxGrain:
		return fmt.Errorf("%w: vmdk grain size of %d sectors is invalid", ErrCorrupt, h.grain)
	case h.gtes == 0 || h.gtes > vmdkMaxGTEs:
		return fmt.Errorf("%w: vmdk grain table of %d entries is invalid", ErrCorrupt, h.gtes)
	case h.capacity > uint64(maxOffset)/512:
		return fmt.Errorf("%w: vmdk capacity of %d sectors is impossible", ErrCorrupt, h.capacity)
	}
	return nil
}

func (v *vmdkParser) grainDirectory(gd, rgd uint64) error {
	n := v.gdEntries * 4
	if gd == 0 || gd > uint64(maxOffset)/1024 || rgd > uint64(maxOffset)/1024 {
		return fmt.Errorf("%w: vmdk grain directory offset %d is invalid", ErrCorrupt, gd)
	}
	v.ends.note(int64(gd*512+n), "grain directory")
	if rgd != 0 {
		v.ends.note(int64(rgd*512+n), "redundant grain directory")
	}
	if n > vmdkCaptureGD {
		v.capture.missed++
		return nil
	}
	return v.capture.add(int64(gd*512), int64(n), v.onGD)
}

func (v *vmdkParser) onGD(b []byte) error {
	for i := 0; i+4 <= len(b); i += 4 {
		s := int64(binary.LittleEndian.Uint32(b[i:]))
		if s == 0 {
			continue
		}
		n := int64(v.h.gtes) * 4
		v.ends.note(s*512+n, "grain table")
		if err := v.capture.add(s*512, n, v.onGT); err != nil {
			return err
		}
	}
	return nil
}

func (v *vmdkParser) onGT(b []byte) error {
	for i := 0; i+4 <= len(b); i += 4 {
		s := int64(binary.LittleEndian.Uint32(b[i:]))
		if s <= vmdkZeroGrain {
			continue
		}
		if v.compressed { // a grain marker and compressed data: at least a sector
			v.ends.note((s+1)*512, "compressed grain")
			continue
		}
		v.ends.note((s+int64(v.h.grain))*512, "grain")
	}
	return nil
}

// onDescriptor reads the embedded descriptor: only the two single-file
// sparse types are accepted, and a parent means a backing file.
func (v *vmdkParser) onDescriptor(b []byte) error {
	v.descSeen = true
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	text := string(b)
	if parent := descriptorValue(text, "parentFileNameHint"); parent != "" {
		return fmt.Errorf("%w: vmdk image is a delta of %q: refusing", ErrBackingFile, parent)
	}
	switch ct := descriptorValue(text, "createType"); ct {
	case "monolithicSparse", "streamOptimized":
	case "":
		return fmt.Errorf("%w: vmdk embedded descriptor has no createType", ErrUnsupportedFormat)
	default:
		return fmt.Errorf("%w: vmdk createType %q is not supported (only monolithicSparse and streamOptimized)", ErrUnsupportedFormat, ct)
	}
	if files := descriptorExtents(b); len(files) > 1 {
		return fmt.Errorf("%w: vmdk descriptor lists %d extent files (%s): refusing", ErrExtentFile, len(files), strings.Join(files, ", "))
	}
	return nil
}

func descriptorValue(text, key string) string {
	for line := range strings.Lines(text) {
		k, val, ok := strings.Cut(line, "=")
		if ok && strings.TrimSpace(k) == key {
			return strings.Trim(strings.TrimSpace(val), `"`)
		}
	}
	return ""
}

func (v *vmdkParser) finish(total int64, tail []byte) (int64, error) {
	capacity := v.h.capacity
	if v.h.gd == vmdkGDAtEnd {
		footer, err := vmdkFooter(total, tail)
		if err != nil {
			return 0, err
		}
		if err := v.validate(footer); err != nil {
			return 0, err
		}
		capacity = footer.capacity
		if footer.gd == 0 || footer.gd > uint64(total)/512 {
			return 0, fmt.Errorf("%w: vmdk footer points to a grain directory at sector %d, beyond the data", ErrCorrupt, footer.gd)
		}
	}
	if err := v.ends.check("vmdk", total); err != nil {
		return 0, err
	}
	if !v.descSeen {
		return 0, fmt.Errorf("%w: vmdk embedded descriptor could not be read", ErrCorrupt)
	}
	return int64(capacity) * 512, nil
}

// vmdkFooter checks the end of a streamOptimized extent: footer marker,
// footer (a copy of the header with the real grain directory offset) and
// end-of-stream marker. Anything else means the stream was cut.
func vmdkFooter(total int64, tail []byte) (vmdkHeader, error) {
	const n = 3 * 512
	if len(tail) < n || total < 512+n {
		return vmdkHeader{}, fmt.Errorf("%w: vmdk streamOptimized image ends without its footer", ErrTruncated)
	}
	t := tail[len(tail)-n:]
	marker, footer, eos := t[:512], t[512:1024], t[1024:]
	if binary.LittleEndian.Uint32(marker[12:]) != vmdkMarkerFooter || string(footer[:4]) != "KDMV" ||
		!bytes.Equal(eos[:16], make([]byte, 16)) {
		return vmdkHeader{}, fmt.Errorf("%w: vmdk streamOptimized image does not end with footer and end-of-stream marker", ErrTruncated)
	}
	return parseVMDKHeader(footer), nil
}
