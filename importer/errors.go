package importer

import "errors"

// Sentinel errors of an import; the errors returned wrap them with detail.
var (
	// ErrBadRepository: the target is not cvi/NAME, vi/NS/NAME or vd/NS/NAME.
	ErrBadRepository = errors.New("bad repository")
	// ErrBadChecksum: a --checksum value is not ALG:HEX of a known algorithm.
	ErrBadChecksum = errors.New("bad checksum")
	// ErrChecksumMismatch: the bytes received do not have the expected checksum.
	ErrChecksumMismatch = errors.New("checksum mismatch")
	// ErrSizeMismatch: the source sent fewer or more bytes than it announced.
	ErrSizeMismatch = errors.New("source size mismatch")
	// ErrNotDiskImage: a dvcr:// source is not in the importers' layout.
	ErrNotDiskImage = errors.New("not a disk image in the importers' layout")
)
