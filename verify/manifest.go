package verify

import (
	"context"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/dvcr/dvcr/storage"
)

// maxDepth bounds the nesting of indexes followed.
const maxDepth = 8

// manifestRefs reads and parses manifest blob d (already hashed sound).
func (c *checker) manifestRefs(ctx context.Context, d digest.Digest) ([]storage.ManifestRef, error) {
	if refs, ok := c.manifests[d]; ok {
		return refs, nil
	}
	r, err := c.driver.Reader(ctx, storage.BlobData(d), 0)
	if err != nil {
		return nil, fmt.Errorf("reading manifest %s: %w", d, err)
	}
	defer r.Close()
	payload, err := io.ReadAll(io.LimitReader(r, storage.MaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading manifest %s: %w", d, err)
	}
	if len(payload) > storage.MaxManifestSize {
		return nil, fmt.Errorf("manifest %s is larger than %d bytes", d, storage.MaxManifestSize)
	}
	m, err := storage.ParseManifest(payload)
	if err != nil {
		return nil, fmt.Errorf("parsing manifest %s: %w", d, err)
	}
	c.manifests[d] = m.Refs
	return m.Refs, nil
}
