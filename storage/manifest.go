package storage

import (
	"encoding/json"
	"fmt"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/manifest/manifestlist"
	_ "github.com/distribution/distribution/v3/manifest/ocischema" // registers the OCI media types
	"github.com/distribution/distribution/v3/manifest/schema2"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// MaxManifestSize bounds what the garbage collector and the verification
// read as a manifest (distribution accepts 4 MiB by default).
const MaxManifestSize = 16 << 20

// Manifest is what the garbage collector and the verification need of a
// stored manifest: what it references and its subject.
type Manifest struct {
	Refs    []ManifestRef
	Subject digest.Digest // "" when it has none
}

// ManifestRef is one descriptor a manifest references.
type ManifestRef struct {
	Digest digest.Digest
	Size   int64
	// Manifest: a child manifest (an entry of an index), linked as a
	// revision and read in turn.
	Manifest bool
}

// ParseManifest reads a manifest of any media type distribution serves,
// with or without its mediaType field.
func ParseManifest(payload []byte) (*Manifest, error) {
	var probe struct {
		SchemaVersion int             `json:"schemaVersion"`
		MediaType     string          `json:"mediaType"`
		Manifests     json.RawMessage `json:"manifests"`
		Subject       *v1.Descriptor  `json:"subject"`
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
	refs := m.References()
	out := &Manifest{Refs: make([]ManifestRef, 0, len(refs))}
	for _, r := range refs {
		if err := r.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("reference %q: %w", r.Digest, err)
		}
		out.Refs = append(out.Refs, ManifestRef{Digest: r.Digest, Size: r.Size, Manifest: index || isManifestType(r.MediaType)})
	}
	if probe.Subject != nil && probe.Subject.Digest.Validate() == nil {
		out.Subject = probe.Subject.Digest
	}
	return out, nil
}

func isManifestType(mediaType string) bool {
	switch mediaType {
	case v1.MediaTypeImageManifest, v1.MediaTypeImageIndex, schema2.MediaTypeManifest, manifestlist.MediaTypeManifestList:
		return true
	}
	return false
}
