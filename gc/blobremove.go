// How a blob is deleted where storage deletes paths one at a time (the
// filesystem's trash, or in place): the one place for the filesystem and
// in-place kinds, inside the window and after it. Object storage deletes
// blobs in batches instead (objects.go).

package gc

import (
	"context"

	"github.com/dvcr/dvcr/storage"
)

// removeBlob deletes b with remove (a path and the blob bytes it holds):
// the repositories' layer links first, then the data, so that a run
// stopped between the two leaves an unlinked blob, which the next run
// deletes, and never a link to missing data. A path already gone is no
// error. It tells whether this call deleted the data; a link it could not
// delete keeps the data, and every failure is recorded.
func (s *sweeper) removeBlob(ctx context.Context, remove func(ctx context.Context, p string, size int64) error, b condemnedBlob) bool {
	linksGone := true
	for _, dir := range b.links {
		if err := remove(ctx, dir, 0); err != nil && !sweepNotFound(err) {
			s.addError("deleting layer link %s: %v", dir, err)
			linksGone = false
		}
	}
	if !linksGone {
		return false
	}
	err := remove(ctx, storage.BlobDir(b.digest), b.size)
	if err != nil && !sweepNotFound(err) {
		s.addError("deleting blob %s: %v", b.digest, err)
	}
	return err == nil
}

// countDeleted counts a blob deleted, freeing size bytes.
func (s *sweeper) countDeleted(size int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.BlobsDeleted++
	s.stats.FreedBytes += size
}
