// Package diskimage packs a virtual machine disk file into an OCI image the
// way the platform's importers do: one uncompressed tar layer holding
// disk/<file>, and the source's size, virtual size and format as config
// labels. Everything is streamed: a disk of many gigabytes is read twice
// (once to hash and write the layer, once by the caller pushing it) and
// never held in memory.
package diskimage

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// Config labels the importers set.
const (
	LabelSize        = "source-image-size"
	LabelVirtualSize = "source-image-virtual-size"
	LabelFormat      = "source-image-format"
)

// LayerDir is the directory of the disk file inside the layer.
const LayerDir = "disk"

// ErrNotDiskImage: the file is not a disk image qemu-img understands.
var ErrNotDiskImage = errors.New("not a disk image")

// Info describes a disk image file.
type Info struct {
	Format      string `json:"format"`       // qcow2, raw, vmdk, vdi, iso...
	VirtualSize int64  `json:"virtual-size"` // bytes the guest sees
	Size        int64  `json:"-"`            // bytes of the file
}

// Inspect asks `qemu-img info` for the format and virtual size of a disk file.
func Inspect(ctx context.Context, path string) (Info, error) {
	st, err := os.Stat(path)
	if err != nil {
		return Info{}, err
	}
	// An absolute path keeps qemu-img from reading a relative name such as
	// "disk:1.img", "json:{...}" or "-x.img" as a protocol or an option.
	abs, err := filepath.Abs(path)
	if err != nil {
		return Info{}, err
	}
	out, err := exec.CommandContext(ctx, "qemu-img", "info", "--output=json", abs).Output()
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			return Info{}, fmt.Errorf("%w: %s: qemu-img: %s", ErrNotDiskImage, path, exitErr.Stderr)
		}
		return Info{}, fmt.Errorf("qemu-img info %s: %w", path, err)
	}
	var info Info
	if err := json.Unmarshal(out, &info); err != nil {
		return Info{}, fmt.Errorf("qemu-img info %s: %w", path, err)
	}
	info.Size = st.Size()
	return info, nil
}

// Image is a disk image laid out as an OCI image: the blobs are files in an
// OCI image layout directory.
type Image struct {
	Manifest       v1.Manifest
	ManifestDigest digest.Digest
	ManifestBytes  []byte
	Layer          v1.Descriptor
	Config         v1.Descriptor
}

// WriteLayout packs the disk file at diskPath into an OCI image layout in
// dir (created if needed), tagged tag, so that `skopeo copy oci:dir:tag ...`
// can push it. info usually comes from Inspect.
func WriteLayout(diskPath string, info Info, dir, tag string) (*Image, error) {
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return nil, err
	}
	layer, err := writeLayer(diskPath, blobs)
	if err != nil {
		return nil, err
	}
	// The layer is uncompressed, so its digest is also its diff ID.
	cfg, err := writeJSONBlob(blobs, v1.MediaTypeImageConfig, imageConfig(info, layer.Digest))
	if err != nil {
		return nil, err
	}
	img := &Image{Layer: layer, Config: cfg}
	img.Manifest = v1.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageManifest,
		Config:    cfg,
		Layers:    []v1.Descriptor{layer},
	}
	man, err := writeJSONBlob(blobs, v1.MediaTypeImageManifest, img.Manifest)
	if err != nil {
		return nil, err
	}
	img.ManifestDigest = man.Digest
	if img.ManifestBytes, err = os.ReadFile(filepath.Join(blobs, man.Digest.Encoded())); err != nil {
		return nil, err
	}
	man.Annotations = map[string]string{v1.AnnotationRefName: tag}
	if err := writeIndex(dir, man); err != nil {
		return nil, err
	}
	return img, nil
}

func imageConfig(info Info, diffID digest.Digest) v1.Image {
	return v1.Image{
		Platform: v1.Platform{Architecture: "amd64", OS: "linux"},
		Config: v1.ImageConfig{Labels: map[string]string{
			LabelSize:        strconv.FormatInt(info.Size, 10),
			LabelVirtualSize: strconv.FormatInt(info.VirtualSize, 10),
			LabelFormat:      info.Format,
		}},
		RootFS: v1.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
	}
}

// writeLayer streams disk/<name> as a tar into a blob file, hashing as it goes.
func writeLayer(diskPath, blobs string) (v1.Descriptor, error) {
	src, err := os.Open(diskPath)
	if err != nil {
		return v1.Descriptor{}, err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return v1.Descriptor{}, err
	}
	tmp, err := os.CreateTemp(blobs, ".layer-*")
	if err != nil {
		return v1.Descriptor{}, err
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	digester := digest.Canonical.Digester()
	counter := &countingWriter{w: io.MultiWriter(tmp, digester.Hash())}
	tw := tar.NewWriter(counter)
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     LayerDir + "/" + filepath.Base(diskPath),
		Mode:     0o644,
		Size:     st.Size(),
		ModTime:  time.Unix(0, 0),
		Format:   tar.FormatPAX,
	}
	if err := tw.WriteHeader(hdr); err != nil {
		tmp.Close()
		return v1.Descriptor{}, err
	}
	if _, err := io.Copy(tw, src); err != nil {
		tmp.Close()
		return v1.Descriptor{}, fmt.Errorf("packing %s: %w", diskPath, err)
	}
	if err := tw.Close(); err != nil { // pads the entry and writes the end-of-archive blocks
		tmp.Close()
		return v1.Descriptor{}, err
	}
	if err := tmp.Close(); err != nil {
		return v1.Descriptor{}, err
	}
	dgst := digester.Digest()
	if err := os.Rename(tmp.Name(), filepath.Join(blobs, dgst.Encoded())); err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{
		MediaType: v1.MediaTypeImageLayer,
		Digest:    dgst,
		Size:      counter.n,
	}, nil
}

func writeJSONBlob(blobs, mediaType string, v any) (v1.Descriptor, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return v1.Descriptor{}, err
	}
	dgst := digest.FromBytes(data)
	if err := os.WriteFile(filepath.Join(blobs, dgst.Encoded()), data, 0o644); err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mediaType, Digest: dgst, Size: int64(len(data))}, nil
}

func writeIndex(dir string, manifest v1.Descriptor) error {
	layout, _ := json.Marshal(v1.ImageLayout{Version: v1.ImageLayoutVersion})
	if err := os.WriteFile(filepath.Join(dir, v1.ImageLayoutFile), layout, 0o644); err != nil {
		return err
	}
	index, err := json.Marshal(v1.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageIndex,
		Manifests: []v1.Descriptor{manifest},
	})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "index.json"), index, 0o644)
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
