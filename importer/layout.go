package importer

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/dvcr/dvcr/importer/diskformat"
)

// Config labels of the importers' layout, read by every consumer.
const (
	LabelSize        = "source-image-size"
	LabelVirtualSize = "source-image-virtual-size"
	LabelFormat      = "source-image-format"
)

// LayerDir is the directory of the disk file inside the layer.
const LayerDir = "disk"

// blockSize is the tar block: entries are padded to it.
const blockSize = 512

// tarHeader is the header block(s) of the layer's only entry. PAX records
// carry sizes past USTAR's 8 GiB.
func tarHeader(name string, size int64) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     LayerDir + "/" + name,
		Mode:     0o644,
		Size:     size,
		ModTime:  time.Unix(0, 0),
		Format:   tar.FormatPAX,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, fmt.Errorf("tar header for %s: %w", name, err)
	}
	// WriteHeader has written the blocks; tw is neither flushed nor closed,
	// since both would complain that the entry's data is missing.
	return buf.Bytes(), nil
}

// tarTrailer pads an entry of size bytes to the block and ends the archive
// with two zero blocks, as tar.Writer.Close does.
func tarTrailer(size int64) []byte {
	pad := (blockSize - size%blockSize) % blockSize
	return make([]byte, pad+2*blockSize)
}

// layerSize is the byte length of the layer for a file of size bytes.
func layerSize(header []byte, size int64) int64 {
	return int64(len(header)) + size + int64(len(tarTrailer(size)))
}

// imageConfig is the config blob: the labels and the layer's diff ID (the
// layer is uncompressed, so its digest).
func imageConfig(info diskformat.Info, layer digest.Digest) ([]byte, error) {
	return json.Marshal(v1.Image{
		Platform: v1.Platform{Architecture: "amd64", OS: "linux"},
		Config: v1.ImageConfig{Labels: map[string]string{
			LabelSize:        strconv.FormatInt(info.SourceSize, 10),
			LabelVirtualSize: strconv.FormatInt(info.VirtualSize, 10),
			LabelFormat:      string(info.Format),
		}},
		RootFS: v1.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer}},
	})
}

// imageManifest is the OCI manifest of the config and the one layer.
func imageManifest(config, layer v1.Descriptor) ([]byte, error) {
	return json.Marshal(v1.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageManifest,
		Config:    config,
		Layers:    []v1.Descriptor{layer},
	})
}

// Labels are the importers' labels of an image config, parsed.
type Labels struct {
	Format      diskformat.Format
	SourceSize  int64
	VirtualSize int64
}

// ParseLabels reads the labels of a config blob in the importers' layout.
func ParseLabels(config []byte) (Labels, error) {
	var img v1.Image
	if err := json.Unmarshal(config, &img); err != nil {
		return Labels{}, fmt.Errorf("%w: config: %w", ErrNotDiskImage, err)
	}
	l := img.Config.Labels
	size, err1 := strconv.ParseInt(l[LabelSize], 10, 64)
	vsize, err2 := strconv.ParseInt(l[LabelVirtualSize], 10, 64)
	if l[LabelFormat] == "" || err1 != nil || err2 != nil {
		return Labels{}, fmt.Errorf("%w: config labels %s, %s, %s missing or not numbers", ErrNotDiskImage, LabelFormat, LabelSize, LabelVirtualSize)
	}
	return Labels{Format: diskformat.Format(l[LabelFormat]), SourceSize: size, VirtualSize: vsize}, nil
}
