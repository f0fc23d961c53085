// Package ocilayout writes a disk file as an OCI image layout directory in
// the importers' layout (importer/layout.go), for tests: skopeo copies it
// into a registry, tests push its blobs by hand or read its layer.
//
// It is written apart from the importer, with archive/tar, the image-spec
// types and go-containerregistry's layout package, so that
// TestImportMatchesLayout checks the one against the other. It imports
// nothing of DVCR but the importer's exported names, so every package's
// tests can use it.
package ocilayout

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/dvcr/dvcr/importer"
	"github.com/dvcr/dvcr/importer/diskformat"
	"github.com/dvcr/dvcr/importer/source"
)

// Image is a disk image written as an OCI image layout directory.
type Image struct {
	Info           diskformat.Info
	Layer          v1.Descriptor
	Config         v1.Descriptor
	Manifest       v1.Manifest
	ManifestDigest digest.Digest
	ManifestBytes  []byte
}

// Write packs the disk file at path into an OCI image layout in dir
// (created if needed), tagged tag: one uncompressed tar layer holding
// disk/<name>, a config with the importers' labels, their manifest.
func Write(path, dir, tag string) (*Image, error) {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return nil, err
	}
	img := &Image{}
	if img.Layer, img.Info, err = writeLayer(p, path); err != nil {
		return nil, err
	}
	cfg, err := json.Marshal(config(img.Info, img.Layer.Digest))
	if err != nil {
		return nil, err
	}
	if img.Config, err = writeBlob(p, v1.MediaTypeImageConfig, cfg); err != nil {
		return nil, err
	}
	img.Manifest = v1.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageManifest,
		Config:    img.Config,
		Layers:    []v1.Descriptor{img.Layer},
	}
	if img.ManifestBytes, err = json.Marshal(img.Manifest); err != nil {
		return nil, err
	}
	man, err := writeBlob(p, v1.MediaTypeImageManifest, img.ManifestBytes)
	if err != nil {
		return nil, err
	}
	img.ManifestDigest = man.Digest
	return img, p.AppendDescriptor(ggcr.Descriptor{
		MediaType:   types.OCIManifestSchema1,
		Size:        man.Size,
		Digest:      hash(man.Digest),
		Annotations: map[string]string{v1.AnnotationRefName: tag},
	})
}

// config is the config of the importers' layout: its labels and the
// layer's diff ID (the layer is uncompressed: its digest).
func config(info diskformat.Info, layer digest.Digest) v1.Image {
	return v1.Image{
		Platform: v1.Platform{Architecture: "amd64", OS: "linux"},
		Config: v1.ImageConfig{Labels: map[string]string{
			importer.LabelSize:        strconv.FormatInt(info.SourceSize, 10),
			importer.LabelVirtualSize: strconv.FormatInt(info.VirtualSize, 10),
			importer.LabelFormat:      string(info.Format),
		}},
		RootFS: v1.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer}},
	}
}

// writeLayer inspects the disk file, digests its layer, then streams the
// layer into the layout.
func writeLayer(p layout.Path, path string) (v1.Descriptor, diskformat.Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return v1.Descriptor{}, diskformat.Info{}, err
	}
	info, err := diskformat.Inspect(f)
	_ = f.Close()
	if err != nil {
		return v1.Descriptor{}, diskformat.Info{}, fmt.Errorf("%s: %w", path, err)
	}
	digester := digest.Canonical.Digester()
	var size counter
	if err := writeTar(io.MultiWriter(digester.Hash(), &size), path); err != nil {
		return v1.Descriptor{}, diskformat.Info{}, err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTar(pw, path)) }()
	desc := v1.Descriptor{MediaType: v1.MediaTypeImageLayer, Digest: digester.Digest(), Size: int64(size)}
	if err := p.WriteBlob(hash(desc.Digest), pr); err != nil {
		return v1.Descriptor{}, diskformat.Info{}, fmt.Errorf("packing %s: %w", path, err)
	}
	return desc, info, nil
}

// writeTar writes the layer of the disk file: a tar of its one entry,
// disk/<name>, in PAX format with a zero modification time.
func writeTar(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	err = tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg,
		Name:     importer.LayerDir + "/" + source.SanitizeName(filepath.Base(path)),
		Mode:     0o644,
		Size:     st.Size(),
		ModTime:  time.Unix(0, 0),
		Format:   tar.FormatPAX,
	})
	if err != nil {
		return err
	}
	if _, err := io.Copy(tw, f); err != nil {
		return err
	}
	return tw.Close()
}

func writeBlob(p layout.Path, mediaType string, data []byte) (v1.Descriptor, error) {
	d := digest.FromBytes(data)
	desc := v1.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}
	return desc, p.WriteBlob(hash(d), io.NopCloser(bytes.NewReader(data)))
}

func hash(d digest.Digest) ggcr.Hash {
	return ggcr.Hash{Algorithm: string(d.Algorithm()), Hex: d.Encoded()}
}

// counter counts the bytes written to it.
type counter int64

func (c *counter) Write(p []byte) (int, error) {
	*c += counter(len(p))
	return len(p), nil
}
