// Imports in progress: the blobs an import has committed into a repository
// whose manifest has not arrived yet. No manifest references them, so the
// mark does not keep them, and with a short grace period the sweep would
// take them from under the import (its manifest PUT then fails with
// MANIFEST_BLOB_UNKNOWN). They are kept whatever the grace period.

package gc

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// UploadingAge bounds how long a blob linked after its repository's tags
// last moved counts as part of an import in progress. An import commits its
// blobs, then writes its manifest and tag in one request a moment later (or
// once a GC window is over), so a day is far beyond any import; what an
// abandoned import left goes once its repository's tag moves (the next
// import succeeds) or a day later.
const UploadingAge = 24 * time.Hour

// uploading reports whether unmarked blob d belongs to an import in
// progress: a repository that stays linked it (upload committed, mount,
// upload of content already stored: distribution writes the layer link each
// time) no earlier than its tags last moved and within UploadingAge.
//
// An importer tags only in its last request, which drained writes never
// split, so until its manifest arrives every blob it committed is linked
// no earlier than the repository's tags. A blob of an image the repository
// held before (replaced by a re-import, untagged) was linked before the tag
// moved to the new image, and goes. It errs on the side of keeping: a link
// or tag that cannot be read keeps the blob.
func (s *sweeper) uploading(ctx context.Context, d digest.Digest) (bool, error) {
	s.mu.Lock()
	links := s.layerLinks[d]
	s.mu.Unlock()
	oldest := s.now.Add(-UploadingAge)
	for _, dir := range links {
		fi, err := s.driver.Stat(ctx, path.Join(dir, "link"))
		switch {
		case sweepNotFound(err):
			continue
		case err != nil:
			return true, fmt.Errorf("reading layer link %s: %w", dir, err)
		case fi.ModTime().Before(oldest):
			continue
		}
		settled, err := s.tagsMovedAt(ctx, repositoryDirOf(dir))
		if err != nil {
			return true, err
		}
		// Not Before: on object storage times have a second's resolution,
		// and a tie must keep the blob.
		if !fi.ModTime().Before(settled) {
			return true, nil
		}
	}
	return false, nil
}

// tagsMovedAt is when the repository at dir last moved a tag: the oldest
// modification time of its tags' current links (the earliest keeps more),
// zero when it has no tag yet (a first import).
func (s *sweeper) tagsMovedAt(ctx context.Context, dir string) (time.Time, error) {
	s.mu.Lock()
	t, ok := s.tagsMoved[dir]
	s.mu.Unlock()
	if ok {
		return t, nil
	}
	tags, err := s.driver.List(ctx, path.Join(dir, "_manifests", "tags"))
	if err != nil && !sweepNotFound(err) {
		return time.Time{}, fmt.Errorf("listing the tags of %s: %w", dir, err)
	}
	for _, tag := range tags {
		fi, err := s.driver.Stat(ctx, path.Join(tag, "current", "link"))
		if sweepNotFound(err) {
			continue
		}
		if err != nil {
			return time.Time{}, fmt.Errorf("reading tag %s: %w", tag, err)
		}
		if t.IsZero() || fi.ModTime().Before(t) {
			t = fi.ModTime()
		}
	}
	s.mu.Lock()
	s.tagsMoved[dir] = t
	s.mu.Unlock()
	return t, nil
}

// repositoryDirOf is the repository directory of a layer link directory
// (<repository>/_layers/<alg>/<hex>).
func repositoryDirOf(linkDir string) string {
	if i := strings.LastIndex(linkDir, "/_layers/"); i >= 0 {
		return linkDir[:i]
	}
	return path.Dir(path.Dir(path.Dir(linkDir)))
}

// keepUploading decides for an unmarked blob whether an import in progress
// keeps it, counting it when it does.
func (s *sweeper) keepUploading(ctx context.Context, d digest.Digest) bool {
	keep, err := s.uploading(ctx, d)
	if err != nil {
		s.addError("blob %s kept: %v", d, err)
		return true
	}
	if keep {
		s.mu.Lock()
		s.stats.BlobsKeptUploading++
		s.mu.Unlock()
	}
	return keep
}
