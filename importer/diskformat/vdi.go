package diskformat

import (
	"encoding/binary"
	"fmt"
)

const (
	vdiHeaderEnd     = 0x190 // end of the version 1.1 header
	vdiTypeDynamic   = 1
	vdiTypeFixed     = 2
	vdiTypeDiff      = 4
	vdiUnallocated   = 0xffffffff
	vdiZeroBlock     = 0xfffffffe
	vdiMaxBlocks     = 0x3fffffff // qemu's VDI_BLOCKS_IN_IMAGE_MAX
	vdiCaptureBitmap = 4 << 20
)

type vdiHeader struct {
	version, imageType, offBmap, offData, sectorSize, blockSize, blockExtra, blocks, allocated uint32
	diskSize                                                                                   uint64
}

// vdiParser checks a VirtualBox image: the block map must point inside the
// allocated blocks, and the allocated blocks must all have arrived.
type vdiParser struct {
	h vdiHeader
}

func (p *vdiParser) headNeed([]byte) int { return 0 }
func (p *vdiParser) needsAll() bool      { return true }

func parseVDIHeader(b []byte) vdiHeader {
	le := binary.LittleEndian
	return vdiHeader{
		version: le.Uint32(b[0x44:]), imageType: le.Uint32(b[0x4c:]), offBmap: le.Uint32(b[0x154:]),
		offData: le.Uint32(b[0x158:]), sectorSize: le.Uint32(b[0x168:]), diskSize: le.Uint64(b[0x170:]),
		blockSize: le.Uint32(b[0x178:]), blockExtra: le.Uint32(b[0x17c:]), blocks: le.Uint32(b[0x180:]),
		allocated: le.Uint32(b[0x184:]),
	}
}

func (p *vdiParser) start(e *engine, head []byte) error {
	if len(head) < vdiHeaderEnd {
		return fmt.Errorf("%w: vdi header cut after %d bytes", ErrTruncated, len(head))
	}
	h := parseVDIHeader(head)
	if err := validateVDI(h); err != nil {
		return err
	}
	p.h = h
	n := int64(h.blocks) * 4
	if n > vdiCaptureBitmap {
		e.capture.missed++
		return nil
	}
	return e.capture.add(int64(h.offBmap), n, p.onBitmap)
}

func validateVDI(h vdiHeader) error {
	switch {
	case h.version>>16 != 1:
		return fmt.Errorf("%w: vdi version %d.%d", ErrUnsupportedFormat, h.version>>16, h.version&0xffff)
	case h.imageType == vdiTypeDiff:
		return fmt.Errorf("%w: vdi image is a differencing image (it needs its parent): refusing", ErrBackingFile)
	case h.imageType != vdiTypeDynamic && h.imageType != vdiTypeFixed:
		return fmt.Errorf("%w: vdi image type %d (only dynamic and fixed images)", ErrUnsupportedFormat, h.imageType)
	case h.sectorSize != 512:
		return fmt.Errorf("%w: vdi sector size %d is not 512", ErrCorrupt, h.sectorSize)
	case h.blockSize < 512 || h.blockSize > 256<<20 || h.blockSize&(h.blockSize-1) != 0 || h.blockExtra != 0:
		return fmt.Errorf("%w: vdi block size %d (extra %d) is invalid", ErrCorrupt, h.blockSize, h.blockExtra)
	case h.blocks > vdiMaxBlocks || h.allocated > h.blocks:
		return fmt.Errorf("%w: vdi image declares %d blocks, %d allocated", ErrCorrupt, h.blocks, h.allocated)
	case h.diskSize > uint64(h.blocks)*uint64(h.blockSize):
		return fmt.Errorf("%w: vdi disk size %d is larger than its %d blocks", ErrCorrupt, h.diskSize, h.blocks)
	case h.offBmap < vdiHeaderEnd || uint64(h.offBmap)+uint64(h.blocks)*4 > uint64(h.offData):
		return fmt.Errorf("%w: vdi block map at %d overlaps the header or the data at %d", ErrCorrupt, h.offBmap, h.offData)
	}
	return nil
}

func (p *vdiParser) onBitmap(b []byte) error {
	for i := 0; i+4 <= len(b); i += 4 {
		blk := binary.LittleEndian.Uint32(b[i:])
		if blk != vdiUnallocated && blk != vdiZeroBlock && blk >= p.h.allocated {
			return fmt.Errorf("%w: vdi block %d maps to block %d of %d allocated", ErrCorrupt, i/4, blk, p.h.allocated)
		}
	}
	return nil
}

func (p *vdiParser) finish(total int64, _ []byte) (int64, error) {
	need := int64(p.h.offData) + int64(p.h.allocated)*int64(p.h.blockSize)
	if need > total {
		return 0, fmt.Errorf("%w: vdi image is truncated: its %d allocated blocks end at byte %d but only %d bytes arrived",
			ErrTruncated, p.h.allocated, need, total)
	}
	// qemu counts whole sectors, the last one partly past the disk size
	// included (DIV_ROUND_UP): the raw image it reads is that long.
	return (int64(p.h.diskSize) + 511) &^ 511, nil
}
