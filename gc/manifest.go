// Manifest parsing: only what the mark needs from a manifest (what it
// references, its subject), cached by digest since the same image is often in
// several repositories.

package gc

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/dvcr/dvcr/storage"
)

// errSweepCorrupt: a manifest blob that is not a manifest distribution can read.
var errSweepCorrupt = errors.New("corrupt manifest")

// manifest reads and parses the manifest blob d. A missing blob is a
// storagedriver.PathNotFoundError, an unreadable one errSweepCorrupt.
func (s *sweeper) manifest(ctx context.Context, d digest.Digest) (*storage.Manifest, error) {
	if v, ok := s.manifests.Load(d); ok {
		return v.(*storage.Manifest), nil
	}
	r, err := s.driver.Reader(ctx, storage.BlobData(d), 0)
	if err != nil {
		return nil, err
	}
	payload, err := io.ReadAll(io.LimitReader(r, storage.MaxManifestSize+1))
	r.Close()
	if err != nil {
		return nil, err
	}
	if len(payload) > storage.MaxManifestSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", errSweepCorrupt, storage.MaxManifestSize)
	}
	if d.Algorithm().Available() && d.Algorithm().FromBytes(payload) != d {
		return nil, fmt.Errorf("%w: content does not match its digest", errSweepCorrupt)
	}
	m, err := storage.ParseManifest(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSweepCorrupt, err)
	}
	s.manifests.Store(d, m)
	return m, nil
}
