// Manifest parsing: only what the mark needs from a manifest (what it
// references, its subject), cached by digest since the same image is often in
// several repositories.

package gc

import (
	"context"
	"encoding/json"
	"errors"
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

// sweepMaxManifestSize bounds what is read as a manifest (distribution
// accepts 4 MiB by default).
const sweepMaxManifestSize = 16 << 20

// errSweepCorrupt: a manifest blob that is not a manifest distribution can read.
var errSweepCorrupt = errors.New("corrupt manifest")

// sweepManifest is what the mark needs from a manifest.
type sweepManifest struct {
	refs    []sweepRef
	subject digest.Digest
}

type sweepRef struct {
	digest   digest.Digest
	manifest bool // a child manifest (entry of an index), to read in turn
}

// manifest reads and parses the manifest blob d. A missing blob is a
// storagedriver.PathNotFoundError, an unreadable one errSweepCorrupt.
func (s *sweeper) manifest(ctx context.Context, d digest.Digest) (*sweepManifest, error) {
	if v, ok := s.manifests.Load(d); ok {
		return v.(*sweepManifest), nil
	}
	r, err := s.driver.Reader(ctx, storage.BlobData(d), 0)
	if err != nil {
		return nil, err
	}
	payload, err := io.ReadAll(io.LimitReader(r, sweepMaxManifestSize+1))
	r.Close()
	if err != nil {
		return nil, err
	}
	if len(payload) > sweepMaxManifestSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", errSweepCorrupt, sweepMaxManifestSize)
	}
	if d.Algorithm().Available() && d.Algorithm().FromBytes(payload) != d {
		return nil, fmt.Errorf("%w: content does not match its digest", errSweepCorrupt)
	}
	m, err := parseSweepManifest(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSweepCorrupt, err)
	}
	s.manifests.Store(d, m)
	return m, nil
}

func parseSweepManifest(payload []byte) (*sweepManifest, error) {
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
	out := &sweepManifest{refs: make([]sweepRef, 0, len(refs))}
	for _, ref := range refs {
		if err := ref.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("reference %q: %w", ref.Digest, err)
		}
		out.refs = append(out.refs, sweepRef{digest: ref.Digest, manifest: index || sweepManifestType(ref.MediaType)})
	}
	if probe.Subject != nil && probe.Subject.Digest.Validate() == nil {
		out.subject = probe.Subject.Digest
	}
	return out, nil
}

func sweepManifestType(mediaType string) bool {
	switch mediaType {
	case v1.MediaTypeImageManifest, v1.MediaTypeImageIndex, schema2.MediaTypeManifest, manifestlist.MediaTypeManifestList:
		return true
	}
	return false
}
