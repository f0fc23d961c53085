package exporter

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/dvcr/dvcr/importer/diskformat"
	"github.com/dvcr/dvcr/importer/registryclient"
)

// planRaw prepares --format raw: a raw disk file is written as stored; a
// qcow2, vmdk or vdi is mapped through range reads of its metadata. It returns the
// default name and the size of the output.
func (j *job) planRaw(ctx context.Context, c *registryclient.Client, data *bufio.Reader) (string, int64, error) {
	if comp := compressionOf(data, true); comp != "" {
		return "", 0, fmt.Errorf("%w: the disk file is %s compressed (use --decompress, then qemu-img convert)", ErrUnsupported, comp)
	}
	if j.img.labels.Format == diskformat.Raw {
		return j.e.Name, j.e.Size, nil
	}
	mapFile, ok := mappers[j.img.labels.Format]
	if !ok {
		return "", 0, fmt.Errorf("%w: converting %s is not supported (%s)", ErrUnsupported, j.img.labels.Format, convertible())
	}
	read := func(ctx context.Context, off, n int64) ([]byte, error) {
		return j.readRange(ctx, c, off, n)
	}
	m, err := mapFile(ctx, read, j.e.Size)
	if err != nil {
		return "", 0, err
	}
	j.conv = m
	return rawName(j.e.Name), m.virtualSize, nil
}

// mappers are the formats --format raw converts.
var mappers = map[diskformat.Format]mapper{
	diskformat.QCOW2: mapQcow2,
	diskformat.VMDK:  mapVMDK,
	diskformat.VDI:   mapVDI,
}

// convertible names the formats --format raw takes, for an error.
func convertible() string {
	names := []string{string(diskformat.Raw)}
	for f := range mappers {
		names = append(names, string(f))
	}
	slices.Sort(names)
	return strings.Join(names, ", ") + " only"
}

// readRange reads n bytes of the disk file at off through a request of
// its own.
func (j *job) readRange(ctx context.Context, c *registryclient.Client, off, n int64) ([]byte, error) {
	if off < 0 || n < 0 || off+n > j.e.Size {
		return nil, fmt.Errorf("%w: %d bytes at %d are past the end of the file", ErrUnsupported, n, off)
	}
	body, err := c.OpenBlob(ctx, j.img.repo, j.img.layer.Digest, j.e.DataOffset()+off)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(body, b); err != nil {
		return nil, fmt.Errorf("reading %d bytes of the disk file at %d: %w", n, off, err)
	}
	return b, nil
}

// rawName is name with its extension replaced by .raw.
func rawName(name string) string {
	if i := strings.LastIndex(name, "."); i > 0 {
		name = name[:i]
	}
	return name + ".raw"
}
