package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/manifest/manifestlist"
	_ "github.com/distribution/distribution/v3/manifest/ocischema" // registers the OCI media types
	"github.com/distribution/distribution/v3/manifest/schema2"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/dvcr/dvcr/storage"
)

// maxManifestSize bounds what is read as a manifest.
const maxManifestSize = 16 << 20

// maxDepth bounds the nesting of indexes followed.
const maxDepth = 8

// ref is one descriptor a manifest references.
type ref struct {
	digest   digest.Digest
	size     int64
	manifest bool // a child manifest, linked as a revision and read in turn
}

// manifestRefs reads and parses manifest blob d (already hashed sound).
func (c *checker) manifestRefs(ctx context.Context, d digest.Digest) ([]ref, error) {
	if refs, ok := c.manifests[d]; ok {
		return refs, nil
	}
	r, err := c.driver.Reader(ctx, storage.BlobData(d), 0)
	if err != nil {
		return nil, fmt.Errorf("reading manifest %s: %w", d, err)
	}
	defer r.Close()
	payload, err := io.ReadAll(io.LimitReader(r, maxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading manifest %s: %w", d, err)
	}
	if len(payload) > maxManifestSize {
		return nil, fmt.Errorf("manifest %s is larger than %d bytes", d, maxManifestSize)
	}
	refs, err := parseManifest(payload)
	if err != nil {
		return nil, fmt.Errorf("parsing manifest %s: %w", d, err)
	}
	c.manifests[d] = refs
	return refs, nil
}

func parseManifest(payload []byte) ([]ref, error) {
	var probe struct {
		SchemaVersion int             `json:"schemaVersion"`
		MediaType     string          `json:"mediaType"`
		Manifests     json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(payload, &probe); err != nil {
		return nil, err
	}
	if probe.SchemaVersion != 2 {
		return nil, fmt.Errorf("unsupported manifest schema version %d", probe.SchemaVersion)
	}
	mediaType := probe.MediaType
	if mediaType == "" { // OCI allows leaving it out
		mediaType = v1.MediaTypeImageManifest
		if probe.Manifests != nil {
			mediaType = v1.MediaTypeImageIndex
		}
	}
	m, _, err := distribution.UnmarshalManifest(mediaType, payload)
	if err != nil {
		return nil, err
	}
	index := mediaType == v1.MediaTypeImageIndex || mediaType == manifestlist.MediaTypeManifestList
	var refs []ref
	for _, desc := range m.References() {
		if err := desc.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("reference %q: %w", desc.Digest, err)
		}
		refs = append(refs, ref{digest: desc.Digest, size: desc.Size, manifest: index || isManifestType(desc.MediaType)})
	}
	return refs, nil
}

func isManifestType(mediaType string) bool {
	switch mediaType {
	case v1.MediaTypeImageManifest, v1.MediaTypeImageIndex, schema2.MediaTypeManifest, manifestlist.MediaTypeManifestList:
		return true
	}
	return false
}
