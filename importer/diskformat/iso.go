package diskformat

import (
	"encoding/binary"
	"fmt"
)

const (
	isoSector    = 2048
	isoFirstDesc = 16 // volume descriptors start at sector 16
	isoPVD       = 1
	isoTerminal  = 255
)

// isoParser: an ISO 9660 image. Its virtual size is its length, which must
// cover the volume space the primary volume descriptor declares.
type isoParser struct {
	need int64
}

func (p *isoParser) headNeed([]byte) int { return 0 }
func (p *isoParser) needsAll() bool      { return false }

func (p *isoParser) start(_ *engine, head []byte) error {
	for s := isoFirstDesc; (s+1)*isoSector <= len(head); s++ {
		d := head[s*isoSector : (s+1)*isoSector]
		if string(d[1:6]) != "CD001" {
			break
		}
		switch d[0] {
		case isoPVD:
			return p.primary(d)
		case isoTerminal:
			return fmt.Errorf("%w: iso image has no primary volume descriptor", ErrCorrupt)
		}
	}
	if len(head) < (isoFirstDesc+1)*isoSector {
		return fmt.Errorf("%w: iso image cut inside its volume descriptors (%d bytes)", ErrTruncated, len(head))
	}
	return fmt.Errorf("%w: iso image has no primary volume descriptor in its first sectors", ErrCorrupt)
}

func (p *isoParser) primary(d []byte) error {
	le := binary.LittleEndian
	blocks := le.Uint32(d[80:])
	bs := le.Uint16(d[128:])
	if blocks != binary.BigEndian.Uint32(d[84:]) || bs != binary.BigEndian.Uint16(d[130:]) {
		return fmt.Errorf("%w: iso primary volume descriptor has mismatched sizes", ErrCorrupt)
	}
	if bs != 512 && bs != 1024 && bs != 2048 {
		return fmt.Errorf("%w: iso logical block size %d is invalid", ErrCorrupt, bs)
	}
	p.need = int64(blocks) * int64(bs)
	return nil
}

func (p *isoParser) finish(total int64, _ []byte) (int64, error) {
	if total < p.need {
		return 0, fmt.Errorf("%w: iso image is truncated: its volume is %d bytes but only %d bytes arrived", ErrTruncated, p.need, total)
	}
	return sectorCeil(total), nil
}
