// Package diskformat detects the format and sizes of a VM disk image from
// its bytes, as they stream past, and refuses images DVCR must not import:
// qcow2 with a backing file, an external data file or unknown incompatible
// features; vmdk descriptors whose extents are other files; bytes matching
// two formats; truncated or corrupt images; unsupported formats (vhd, vhdx,
// qed, ...). gzip, xz and zstd compressed input is looked through.
//
// An Inspector is an io.Writer: the importer tees the source into it while
// storing the bytes, so inspection costs no extra pass. Tables the checks
// need (qcow2 L1/L2, vmdk grain directory and tables) are captured when the
// stream passes them; tables that lie before the point where their offset
// becomes known cannot be read any more and are not checked (Info does not
// fail because of them).
package diskformat

// Format is the disk format of the (decompressed) image.
type Format string

// Formats, as in the image label source-image-format.
const (
	QCOW2 Format = "qcow2"
	Raw   Format = "raw"
	VMDK  Format = "vmdk"
	VDI   Format = "vdi"
	ISO   Format = "iso"
)

// Compression is the compression wrapped around the image, if any.
type Compression string

// Compressions that are looked through.
const (
	None Compression = ""
	Gzip Compression = "gzip"
	XZ   Compression = "xz"
	Zstd Compression = "zstd"
)

// Info is what an Inspector found.
type Info struct {
	Format      Format      `json:"format"`
	Compression Compression `json:"compression,omitempty"`
	// VirtualSize is the size of the disk the guest sees, as qemu-img
	// info reports it; for raw and iso the decompressed length.
	VirtualSize int64 `json:"virtualSize"`
	// SourceSize is the number of bytes fed in (compressed, as sent).
	SourceSize int64 `json:"sourceSize"`
	// CDROM is true for ISO images.
	CDROM bool `json:"cdrom"`
}
