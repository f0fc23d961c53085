// Condemning and the deferred deletion: which unmarked blobs the window
// condemns, and how they and the untagged manifests go once the registry is
// writable, each claimed from the registry's condemned set so that an
// upload of the same content in the meantime wins. On object storage the
// blobs go in batches (objects.go: deleteBlobBatch).

package gc

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/dvcr/dvcr/units"
)

// condemnedBlob is an unmarked blob the window condemned, with the layer
// links to it of the repositories that stay.
type condemnedBlob struct {
	digest digest.Digest
	size   int64
	links  []string
}

// forget drops the untagged manifests found in repos: they are marked again.
func (s *sweeper) forget(repos map[string]struct{}) {
	kept := s.deletions[:0]
	for _, del := range s.deletions {
		if _, written := repos[del.repo]; !written {
			kept = append(kept, del)
		}
	}
	s.deletions = kept
}

// condemn picks the listed blobs no kept manifest references and no grace
// period protects. It runs after the mark and the removal.
func (s *sweeper) condemn(ctx context.Context) []condemnedBlob {
	for _, e := range s.opts.Blobs.errors {
		s.addError("%s", e)
	}
	var out []condemnedBlob
	var bytes int64
	st := &s.stats
	st.BlobsTotal = len(s.opts.Blobs.digests)
	for _, d := range s.opts.Blobs.digests {
		if s.isMarked(d) {
			st.BlobsMarked++
			continue
		}
		fi, err := s.blobStat(ctx, d)
		switch {
		case sweepNotFound(err), err == nil && fi.dir:
			continue
		case err != nil:
			s.addError("blob %s: %v", d, err)
			continue
		}
		if _, linked := s.recentLinks[d]; linked || time.Unix(0, fi.modTime).After(s.cutoff) {
			st.BlobsKeptRecent++
			continue
		}
		// Read inside the window: no commit can move a link or a tag
		// between this decision and the publication of the set.
		if s.keepUploading(ctx, d) {
			continue
		}
		out = append(out, condemnedBlob{digest: d, size: fi.size, links: s.layerLinks[d]})
		bytes += fi.size
	}
	s.progress(fmt.Sprintf("sweep: %d blobs, %d referenced, %d condemned (%s), %d kept within the grace period, %d kept for imports in progress; %d untagged manifests condemned",
		st.BlobsTotal, st.BlobsMarked, len(out), units.FormatBytes(uint64(bytes)), st.BlobsKeptRecent, st.BlobsKeptUploading, len(s.deletions)))
	return out
}

// deleteCondemned deletes the plan with the registry writable, then drops
// the registry's caches and clears the set. An entry written again
// meanwhile is left alone.
func (c *Collector) deleteCondemned(ctx context.Context, progress func(string), m deletionMode, plan *deferredPlan) (err error) {
	set := m.condemned
	defer func() {
		// Cleared only once no cache can describe what was deleted.
		if rErr := c.resetCaches(); rErr != nil {
			err = rErr
			return
		}
		set.Clear()
	}()
	s := plan.sweeper
	progress(fmt.Sprintf("deleting %d blobs and %d untagged manifests with the registry writable", len(plan.blobs), len(plan.revisions)))
	if m.storage == storeObjects {
		blobs := newPhaseProgress(progress, "deleting blobs", "done", len(plan.blobs))
		batches := (len(plan.blobs) + batchBlobs - 1) / batchBlobs
		err = forEachParallel(ctx, objectStoreConcurrency, batches, func(ctx context.Context, i int) error {
			batch := plan.blobs[i*batchBlobs : min((i+1)*batchBlobs, len(plan.blobs))]
			c.deleteBlobBatch(ctx, s, set, batch)
			blobs.add(len(batch))
			return nil
		})
		if err != nil {
			return err
		}
		plan.blobs = nil
	}
	// One pool for both: the manifests' deletions fill the gaps the blobs'
	// leave at the end.
	n := len(plan.blobs) + len(plan.revisions)
	done := newPhaseProgress(progress, "deleting", "blobs and untagged manifests", n)
	return forEachParallel(ctx, emptyConcurrency, n, func(ctx context.Context, i int) error {
		if i < len(plan.blobs) {
			c.deleteBlob(ctx, s, set, plan.blobs[i])
		} else {
			c.deleteRevision(ctx, s, set, plan.revisions[i-len(plan.blobs)])
		}
		done.add(1)
		return nil
	})
}

// remove deletes p and everything under it: on the filesystem driver
// directly, sparing the driver's Stat before its RemoveAll; a path already
// gone is no error.
func (c *Collector) remove(ctx context.Context, p string) error {
	if c.FilesystemRoot != "" {
		return os.RemoveAll(filepath.Join(c.FilesystemRoot, filepath.FromSlash(p)))
	}
	if err := c.Driver.Delete(ctx, p); err != nil && !sweepNotFound(err) {
		return err
	}
	return nil
}

// deleteBlob deletes a condemned blob unless it was written again since.
func (c *Collector) deleteBlob(ctx context.Context, s *sweeper, set CondemnedSet, b condemnedBlob) {
	release, ok := set.ClaimBlob(b.digest)
	if !ok {
		s.countKeptWritten()
		return
	}
	gone := s.removeBlob(ctx, func(ctx context.Context, p string, _ int64) error { return c.remove(ctx, p) }, b)
	release(gone)
	if gone {
		s.countDeleted(b.size)
	}
	c.fault(faultDetach)
}

// deleteRevision deletes an untagged manifest's revision link and its tag
// history entries.
func (c *Collector) deleteRevision(ctx context.Context, s *sweeper, set CondemnedSet, del sweepDeletion) {
	release, ok := set.ClaimRevision(del.repo, del.digest)
	if !ok {
		return
	}
	if err := c.remove(ctx, path.Dir(del.link)); err != nil {
		s.addError("repository %s: deleting manifest %s: %v", del.repo, del.digest, err)
		release(false)
		return
	}
	for _, dir := range del.tagIndex {
		if err := c.remove(ctx, dir); err != nil {
			s.addError("repository %s: deleting tag history entry %s: %v", del.repo, dir, err)
		}
	}
	release(true)
	s.mu.Lock()
	s.stats.ManifestsDeleted++
	s.mu.Unlock()
}

// countKeptWritten counts a condemned blob written again before its deletion.
func (s *sweeper) countKeptWritten() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.BlobsWrittenAgain++
}
