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
// stream passes them, within bounded memory.
//
// Deliberately not checked:
//   - tables that lie before the point where their offset becomes known
//     (the bytes are gone) or beyond the memory bounds: Inspector.Unchecked
//     counts them; their end offsets still count for truncation;
//   - data and compressed clusters (qcow2) only need their first byte (qemu
//     may end the file inside the last cluster or sector);
//   - qcow2 snapshot L1 tables, bitmaps and refcount block contents;
//   - vmdk streamOptimized images with the grain directory at the end: the
//     tables follow the grains, so only footer and end-of-stream marker;
//   - xz input holding raw or iso: only the head is decompressed; the length
//     comes from the xz index, whose CRC32 and sizes are verified against
//     the bytes received, but block CRCs after the head are not, and vhd or
//     dmg footers at the end of such raw data are not seen. The LZMA2
//     dictionary size is checked on the first block only.
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
