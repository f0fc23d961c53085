package exporter

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
)

// VirtualBox vdi 1.1 fields (little-endian), as qemu's block/vdi.c reads
// them; the importer's diskformat/vdi.go checks the same header on import.
const (
	vdiSignature   = 0xbeda107f
	vdiVersion11   = 0x00010001
	vdiTypeDynamic = 1
	vdiTypeFixed   = 2
	vdiFree        = 0xfffffffe // this entry and 0xffffffff (unallocated) read as zeros
	vdiMaxBlock    = 32 << 20   // bytes held in memory per block
	vdiMaxMap      = 32 << 20   // bytes of block map held in memory (8 TiB of 1 MiB blocks)
)

// vdiHeader is what the conversion needs of a vdi header.
type vdiHeader struct {
	signature, version, imageType, offBmap, offData uint32
	sectorSize, blockSize, blockExtra, blocks       uint32
	diskSize                                        uint64
	parent                                          bool // a link or parent UUID is set
}

func parseVDIHeader(b []byte) vdiHeader {
	le := binary.LittleEndian
	var zero [32]byte
	return vdiHeader{
		signature: le.Uint32(b[0x40:]), version: le.Uint32(b[0x44:]), imageType: le.Uint32(b[0x4c:]),
		offBmap: le.Uint32(b[0x154:]), offData: le.Uint32(b[0x158:]), sectorSize: le.Uint32(b[0x168:]),
		diskSize: le.Uint64(b[0x170:]), blockSize: le.Uint32(b[0x178:]), blockExtra: le.Uint32(b[0x17c:]),
		blocks: le.Uint32(b[0x180:]), parent: string(b[0x1a8:0x1c8]) != string(zero[:]),
	}
}

// mapVDI reads the header and the block map by range and lists the
// allocated blocks. Map entries may point to the blocks in any order.
func mapVDI(ctx context.Context, read rangeReader, fileSize int64) (*diskMap, error) {
	if fileSize < 512 {
		return nil, fmt.Errorf("%w: a vdi of %d bytes has no header", ErrUnsupported, fileSize)
	}
	hdr, err := read(ctx, 0, 512)
	if err != nil {
		return nil, err
	}
	h := parseVDIHeader(hdr)
	m := &diskMap{}
	if m.virtualSize, err = checkVDIHeader(h); err != nil {
		return nil, err
	}
	m.addMeta(0, hdr)
	// Only the entries up to the disk size are read, by qemu too.
	bs := int64(h.blockSize)
	n := (m.virtualSize + bs - 1) / bs * 4
	if n > vdiMaxMap {
		return nil, fmt.Errorf("%w: vdi block map of %d bytes (disk of %d bytes in blocks of %d; at most %d bytes)", ErrUnsupported, n, m.virtualSize, bs, vdiMaxMap)
	}
	if int64(h.offBmap)+n > fileSize {
		return nil, fmt.Errorf("%w: vdi block map of %d bytes at %d is past the end of the file", ErrUnsupported, n, h.offBmap)
	}
	bmap, err := read(ctx, int64(h.offBmap), n)
	if err != nil {
		return nil, err
	}
	m.addMeta(int64(h.offBmap), bmap)
	if err := addVDIBlocks(m, h, bmap, fileSize); err != nil {
		return nil, err
	}
	m.sortRegions()
	return m, nil
}

// checkVDIHeader checks what qemu checks, and what the conversion relies
// on, and returns the disk size.
func checkVDIHeader(h vdiHeader) (int64, error) {
	switch {
	case h.signature != vdiSignature:
		return 0, fmt.Errorf("%w: not a vdi header (signature %#x)", ErrUnsupported, h.signature)
	case h.version != vdiVersion11:
		return 0, fmt.Errorf("%w: vdi version %d.%d (only 1.1)", ErrUnsupported, h.version>>16, h.version&0xffff)
	case h.imageType != vdiTypeDynamic && h.imageType != vdiTypeFixed:
		return 0, fmt.Errorf("%w: vdi image type %d (only dynamic and fixed)", ErrUnsupported, h.imageType)
	case h.parent:
		return 0, fmt.Errorf("%w: the vdi has a parent image (link or parent UUID), which is not in the image", ErrUnsupported)
	case h.sectorSize != 512:
		return 0, fmt.Errorf("%w: vdi sector size %d", ErrUnsupported, h.sectorSize)
	case h.blockSize < 512 || h.blockSize > vdiMaxBlock || h.blockSize&(h.blockSize-1) != 0 || h.blockExtra != 0:
		return 0, fmt.Errorf("%w: vdi block size %d with %d extra bytes (a power of two up to %d, no extra)", ErrUnsupported, h.blockSize, h.blockExtra, vdiMaxBlock)
	case h.offBmap%512 != 0 || h.offData%512 != 0:
		return 0, fmt.Errorf("%w: vdi block map at %d or data at %d not on a sector", ErrUnsupported, h.offBmap, h.offData)
	case h.diskSize > math.MaxInt64-511:
		return 0, fmt.Errorf("%w: vdi disk size %d", ErrUnsupported, h.diskSize)
	}
	// qemu rounds an odd size (VBoxManage convertfromraw writes them) up
	// to whole sectors.
	size := int64(h.diskSize+511) &^ 511
	if room := int64(h.blocks) * int64(h.blockSize); size > room {
		return 0, fmt.Errorf("%w: vdi disk size %d is larger than its %d blocks of %d bytes", ErrUnsupported, size, h.blocks, h.blockSize)
	}
	return size, nil
}

// addVDIBlocks lists the allocated blocks of the map: block entry of the
// data lies at offData + entry × block size.
func addVDIBlocks(m *diskMap, h vdiHeader, bmap []byte, fileSize int64) error {
	bs := int64(h.blockSize)
	room := newFileRoom(fileSize, int64(h.offData), bs)
	for i := range int64(len(bmap) / 4) {
		e := binary.LittleEndian.Uint32(bmap[i*4:])
		if e >= vdiFree {
			continue // unallocated or zero: a hole
		}
		guest := i * bs
		off := int64(h.offData) + int64(e)*bs
		if off+min(bs, m.virtualSize-guest) > fileSize {
			return fmt.Errorf("%w: vdi block %d is stored at %d, past the end of the file", ErrUnsupported, i, off)
		}
		if err := room.take(bs, "the vdi block map lists more blocks"); err != nil {
			return err
		}
		m.addData(off, bs, guest, bs, nil)
	}
	return nil
}
