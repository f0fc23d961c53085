package exporter

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Compressions of a disk file that --decompress unpacks.
const (
	compGzip = "gzip"
	compXZ   = "xz"
	compZstd = "zstd"
)

// compressionOf peeks at the disk file's first bytes; "" when not wanted
// or not compressed.
func compressionOf(data *bufio.Reader, want bool) string {
	if !want {
		return ""
	}
	b, _ := data.Peek(6)
	switch {
	case bytes.HasPrefix(b, []byte{0x1f, 0x8b}):
		return compGzip
	case bytes.HasPrefix(b, []byte("\xfd7zXZ\x00")):
		return compXZ
	case bytes.HasPrefix(b, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return compZstd
	}
	return ""
}

// decompressedName drops the compression's extension from name.
func decompressedName(name, comp string) string {
	exts := map[string][]string{compGzip: {".gz", ".gzip"}, compXZ: {".xz"}, compZstd: {".zst", ".zstd"}}[comp]
	for _, ext := range exts {
		if base, ok := strings.CutSuffix(name, ext); ok && base != "" {
			return base
		}
	}
	return name + ".raw"
}

// copyData copies the disk file (decompressed when comp is set) into out
// and reads what is left of it, so the layer's hash sees every byte.
func copyData(out io.Writer, src io.Reader, comp string) error {
	if comp == "" {
		_, err := io.Copy(out, src)
		return err
	}
	r, closeFn, err := decoder(src, comp)
	if err != nil {
		return err
	}
	defer closeFn()
	if _, err := io.Copy(out, r); err != nil {
		return fmt.Errorf("decompressing (%s): %w", comp, err)
	}
	_, err = io.Copy(io.Discard, src)
	return err
}

func decoder(src io.Reader, comp string) (io.Reader, func(), error) {
	switch comp {
	case compGzip:
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, nil, fmt.Errorf("decompressing (gzip): %w", err)
		}
		return zr, func() { _ = zr.Close() }, nil
	case compZstd:
		zr, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, nil, fmt.Errorf("decompressing (zstd): %w", err)
		}
		return zr, zr.Close, nil
	default:
		xr, err := xz.NewReader(bufio.NewReaderSize(src, 64<<10))
		if err != nil {
			return nil, nil, fmt.Errorf("decompressing (xz): %w", err)
		}
		return xr, func() {}, nil
	}
}
