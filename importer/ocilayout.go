package importer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/dvcr/dvcr/importer/diskformat"
	"github.com/dvcr/dvcr/importer/source"
)

// LayoutImage is a disk image written as an OCI image layout directory.
type LayoutImage struct {
	Info           diskformat.Info
	Layer          v1.Descriptor
	Config         v1.Descriptor
	Manifest       v1.Manifest
	ManifestDigest digest.Digest
	ManifestBytes  []byte
}

// WriteLayout packs the disk file at path into an OCI image layout in dir
// (created if needed), tagged tag: the same layer, config and manifest that
// Import stores for that file, for tools that read layouts (skopeo copy
// oci:DIR:TAG ...) and for tests that need the blobs.
func WriteLayout(path, dir, tag string) (*LayoutImage, error) {
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return nil, err
	}
	img := &LayoutImage{}
	var err error
	if img.Layer, img.Info, err = writeLayoutLayer(path, blobs); err != nil {
		return nil, err
	}
	cfg, err := imageConfig(img.Info, img.Layer.Digest)
	if err != nil {
		return nil, err
	}
	if img.Config, err = writeBlob(blobs, v1.MediaTypeImageConfig, cfg); err != nil {
		return nil, err
	}
	if img.ManifestBytes, err = imageManifest(img.Config, img.Layer); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(img.ManifestBytes, &img.Manifest); err != nil {
		return nil, err
	}
	man, err := writeBlob(blobs, v1.MediaTypeImageManifest, img.ManifestBytes)
	if err != nil {
		return nil, err
	}
	img.ManifestDigest = man.Digest
	man.Annotations = map[string]string{v1.AnnotationRefName: tag}
	return img, writeIndex(dir, man)
}

// writeLayoutLayer writes the tar layer of the disk file into a blob,
// inspecting the disk on the way.
func writeLayoutLayer(path, blobs string) (v1.Descriptor, diskformat.Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return v1.Descriptor{}, diskformat.Info{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return v1.Descriptor{}, diskformat.Info{}, err
	}
	header, err := tarHeader(source.SanitizeName(filepath.Base(path)), st.Size())
	if err != nil {
		return v1.Descriptor{}, diskformat.Info{}, err
	}
	insp := diskformat.NewInspector()
	layer := io.MultiReader(bytes.NewReader(header), &exactReader{r: io.TeeReader(f, insp), size: st.Size()}, bytes.NewReader(tarTrailer(st.Size())))
	desc, err := writeBlobFrom(blobs, v1.MediaTypeImageLayer, layer)
	if err != nil {
		insp.Abort()
		return v1.Descriptor{}, diskformat.Info{}, fmt.Errorf("packing %s: %w", path, err)
	}
	info, err := insp.Close()
	if err != nil {
		return v1.Descriptor{}, diskformat.Info{}, fmt.Errorf("%s: %w", path, err)
	}
	return desc, info, nil
}

func writeBlob(blobs, mediaType string, data []byte) (v1.Descriptor, error) {
	return writeBlobFrom(blobs, mediaType, bytes.NewReader(data))
}

// writeBlobFrom streams r into blobs/<digest> through a temporary file.
func writeBlobFrom(blobs, mediaType string, r io.Reader) (v1.Descriptor, error) {
	tmp, err := os.CreateTemp(blobs, ".blob-*")
	if err != nil {
		return v1.Descriptor{}, err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	digester := digest.Canonical.Digester()
	n, err := io.Copy(io.MultiWriter(tmp, digester.Hash()), r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return v1.Descriptor{}, err
	}
	d := digester.Digest()
	if err := os.Rename(tmp.Name(), filepath.Join(blobs, d.Encoded())); err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mediaType, Digest: d, Size: n}, nil
}

// writeIndex writes oci-layout and an index.json listing the manifest.
func writeIndex(dir string, manifest v1.Descriptor) error {
	layout, err := json.Marshal(v1.ImageLayout{Version: v1.ImageLayoutVersion})
	if err != nil {
		return err
	}
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
