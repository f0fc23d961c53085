package diskformat

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
)

// A signature is a magic at a fixed offset. Every signature is checked, not
// just the first that matches: bytes matching two of them are refused as
// ambiguous, since two readers could then see two different disks
// (CVE-2024-32498, CVE-2022-47951, CVE-2024-40767 hid qcow2, vmdk and vdi
// headers in the system area of an ISO).
type signature struct {
	name  string
	off   int
	magic string
}

const isoMagicOff = 32769

var signatures = []signature{
	{"qcow2", 0, "QFI\xfb"},
	{"vmdk", 0, "KDMV"},
	{"vmdk COWD (ESX sparse extent)", 0, "COWD"},
	{"vmdk descriptor", 0, "# Disk DescriptorFile"},
	{"vdi", 0x40, "\x7f\x10\xda\xbe"},
	{"vhd", 0, "conectix"},
	{"vhdx", 0, "vhdxfile"},
	{"qed", 0, "QED\x00"},
	{"parallels", 0, "WithoutFreeSpace"},
	{"parallels", 0, "WithouFreSpacExt"},
	{"luks", 0, "LUKS\xba\xbe"},
	{"bochs", 0, "Bochs Virtual HD Image"},
	{"cloop", 0, "#!/bin/sh\n#V2.0 Format"},
	{"gzip", 0, "\x1f\x8b\x08"},
	{"xz", 0, "\xfd7zXZ\x00"},
	{"zstd", 0, "\x28\xb5\x2f\xfd"},
	{"bzip2", 0, "BZh"},
	{"lz4", 0, "\x04\x22\x4d\x18"},
	{"iso", isoMagicOff, "CD001"},
}

func (s signature) matches(head []byte) bool {
	if len(head) < s.off+len(s.magic) || string(head[s.off:s.off+len(s.magic)]) != s.magic {
		return false
	}
	if s.name == "bzip2" { // "BZh" is short: also require the level digit and block magic
		return len(head) >= 10 && head[3] >= '1' && head[3] <= '9' && string(head[4:10]) == "1AY&SY"
	}
	return true
}

// detect names the format of the head and returns its parser, or refuses.
func detect(head []byte) (Format, parser, error) {
	var names []string
	for _, s := range signatures {
		if s.matches(head) && !contains(names, s.name) {
			names = append(names, s.name)
		}
	}
	if !contains(names, "vmdk descriptor") && descriptorText(head) {
		names = append(names, "vmdk descriptor")
	}
	if len(names) > 1 {
		return "", nil, fmt.Errorf("%w: the image matches %s at the same time: refusing, since readers could see different disks",
			ErrAmbiguous, strings.Join(names, " and "))
	}
	if len(names) == 0 {
		return Raw, &rawParser{}, nil
	}
	switch names[0] {
	case "qcow2":
		return qcowVersion(head)
	case "vmdk":
		return VMDK, &vmdkParser{}, nil
	case "vmdk descriptor":
		return "", nil, descriptorFileError(head)
	case "vdi":
		return VDI, &vdiParser{}, nil
	case "iso":
		return ISO, &isoParser{}, nil
	case "gzip", "xz", "zstd":
		return "", nil, fmt.Errorf("%w: the decompressed data is %s-compressed again: unpack it first", ErrUnsupportedFormat, names[0])
	case "bzip2", "lz4":
		return "", nil, fmt.Errorf("%w: %s compression is not supported (use gzip, xz or zstd)", ErrUnsupportedFormat, names[0])
	}
	return "", nil, fmt.Errorf("%w: %s images are not supported (convert to qcow2 or raw)", ErrUnsupportedFormat, names[0])
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func qcowVersion(head []byte) (Format, parser, error) {
	if len(head) < 8 {
		return "", nil, fmt.Errorf("%w: qcow2 header cut after %d bytes", ErrTruncated, len(head))
	}
	switch v := binary.BigEndian.Uint32(head[4:]); v {
	case 2, 3:
		return QCOW2, &qcow2Parser{}, nil
	case 1:
		return "", nil, fmt.Errorf("%w: qcow version 1 images are not supported (convert to qcow2)", ErrUnsupportedFormat)
	default:
		return "", nil, fmt.Errorf("%w: qcow2 version %d is not supported", ErrUnsupportedFormat, v)
	}
}

// descriptorFileError refuses a plain-text vmdk descriptor, naming the
// extent files it points to when they are in the head.
func descriptorFileError(head []byte) error {
	files := descriptorExtents(head)
	if len(files) == 0 {
		return fmt.Errorf("%w: this is a vmdk descriptor text file; its disk data lives in other files: import the disk data instead", ErrExtentFile)
	}
	return fmt.Errorf("%w: this is a vmdk descriptor text file whose disk data lives in other files (%s): refusing",
		ErrExtentFile, strings.Join(files, ", "))
}

// descriptorText reports whether head reads as a vmdk descriptor the way
// qemu probes one: after comment and blank lines, the first line is
// "version=1", "2" or "3". Such a file would make a reader open the files
// its extent lines name, so it must not pass as raw.
func descriptorText(head []byte) bool {
	b := head[:min(len(head), 2048)]
	for len(b) > 0 {
		line, rest, _ := bytes.Cut(b, []byte("\n"))
		trimmed := bytes.TrimRight(bytes.TrimLeft(line, " "), "\r")
		switch {
		case len(line) > 0 && line[0] == '#', len(trimmed) == 0:
			b = rest
			continue
		}
		v, ok := bytes.CutPrefix(line, []byte("version="))
		v = bytes.TrimSuffix(v, []byte("\r"))
		return ok && len(v) == 1 && v[0] >= '1' && v[0] <= '3'
	}
	return false
}

// descriptorExtents returns the quoted file names of extent lines such as
// `RW 2048 FLAT "disk-flat.vmdk" 0` (at most 8 of them).
func descriptorExtents(text []byte) []string {
	var files []string
	for line := range bytes.Lines(text) {
		f := strings.Fields(string(line))
		if len(f) < 4 || (f[0] != "RW" && f[0] != "RDONLY" && f[0] != "NOACCESS") {
			continue
		}
		files = append(files, strings.TrimSpace(f[3]))
		if len(files) == 8 {
			break
		}
	}
	return files
}

// rawParser: anything that is no other format. Its virtual size is its
// length in whole sectors; a vhd or dmg footer at the end is still refused.
type rawParser struct{}

func (*rawParser) headNeed([]byte) int         { return 0 }
func (*rawParser) start(*engine, []byte) error { return nil }
func (*rawParser) needsAll() bool              { return false }
func (*rawParser) finish(total int64, tail []byte) (int64, error) {
	if len(tail) >= 512 {
		footer := tail[len(tail)-512:]
		switch {
		case bytes.HasPrefix(footer, []byte("conectix")):
			return 0, fmt.Errorf("%w: vhd (fixed) images are not supported (convert to raw or qcow2)", ErrUnsupportedFormat)
		case bytes.HasPrefix(footer, []byte("koly")):
			return 0, fmt.Errorf("%w: dmg images are not supported", ErrUnsupportedFormat)
		}
	}
	return sectorCeil(total), nil
}

// sectorCeil rounds a raw length up to whole 512-byte sectors, as qemu-img
// info reports the virtual size of a raw file (and as a disk must be).
func sectorCeil(n int64) int64 { return (n + 511) &^ 511 }
