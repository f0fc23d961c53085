package diskformat

import "errors"

// Sentinel errors of the diskformat package. Every error returned by an
// Inspector wraps exactly one of them (with %w) plus a sentence saying what
// was wrong, so callers test with errors.Is and show the message as is.
var (
	// ErrUnsupportedFormat: the bytes are a format DVCR does not import
	// (vhd, vhdx, qed, qcow version 1, parallels, bzip2, ...); the message
	// names it.
	ErrUnsupportedFormat = errors.New("unsupported image format")
	// ErrBackingFile: the image only holds the differences to another image
	// (qcow2 backing file, vdi differencing image).
	ErrBackingFile = errors.New("image has a backing file")
	// ErrExternalDataFile: a qcow2 image whose guest data lives in another file.
	ErrExternalDataFile = errors.New("image has an external data file")
	// ErrUnknownFeatures: a qcow2 image needs features this package does
	// not know, so its layout cannot be trusted.
	ErrUnknownFeatures = errors.New("image uses unknown incompatible features")
	// ErrExtentFile: a vmdk descriptor whose data lives in other files.
	ErrExtentFile = errors.New("vmdk descriptor names extent files")
	// ErrAmbiguous: the bytes match two formats (e.g. a qcow2 header hidden
	// in the system area of an ISO), so different readers would see
	// different disks.
	ErrAmbiguous = errors.New("image matches more than one format")
	// ErrTruncated: the image declares structures or a size beyond the
	// bytes that arrived.
	ErrTruncated = errors.New("image is truncated")
	// ErrCorrupt: impossible header values or a damaged compression stream.
	ErrCorrupt = errors.New("image is corrupt")
	// ErrEmpty: no bytes at all.
	ErrEmpty = errors.New("image is empty")
	// ErrAborted: Write or Close after Abort.
	ErrAborted = errors.New("inspection aborted")
)
