// Blob sweep: deleting the blobs no kept manifest references, unless they
// are within the grace period or still linked by a repository being removed.

package gc

import (
	"context"

	"fmt"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"path"
	"sort"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/dvcr/dvcr/storage"
	"github.com/dvcr/dvcr/units"
)

// sweepBlobs deletes the unmarked blobs. Blobs linked by repositories of the
// Removal still in storage are held until the last of them is removed, so
// the sweep streams: the workers take blobs from a queue that the removal
// keeps feeding until it ends.
func (s *sweeper) sweepBlobs(ctx context.Context) error {
	blobs, err := s.blobs(ctx)
	if err != nil {
		return err
	}
	prog := newPhaseProgress(s.opts.Progress, "sweep", "blobs", len(blobs))
	// Each blob is queued at most once, so the queue never blocks a sender.
	queue := make(chan digest.Digest, len(blobs))
	var unmarked []digest.Digest
	for _, d := range blobs {
		if !s.isMarked(d) {
			unmarked = append(unmarked, d)
		}
	}
	marked := len(blobs) - len(unmarked)
	s.mu.Lock()
	s.stats.BlobsTotal = len(blobs)
	s.stats.BlobsMarked = marked
	s.mu.Unlock()
	s.removal.enqueue(unmarked, queue)
	prog.add(marked)
	go func() {
		s.removal.wait()
		close(queue)
	}()
	// From here on s.marked and s.recentLinks are only read.
	err = forEachParallel(ctx, s.workers, s.workers, func(ctx context.Context, _ int) error {
		for d := range queue {
			if err := ctx.Err(); err != nil {
				return err
			}
			s.sweepBlob(ctx, d)
			prog.add(1)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if s.batch != nil {
		s.flushBatch(ctx)
	}
	s.mu.Lock()
	s.stats.BlobsKeptLinked = s.removal.held()
	st := s.stats
	s.mu.Unlock()
	prog.add(st.BlobsKeptLinked)
	s.reportSweep(st)
	return nil
}

// reportSweep says in one progress line what the blob sweep did.
func (s *sweeper) reportSweep(st SweepStats) {
	verb := "deleted"
	if s.opts.DryRun {
		verb = "would delete"
	}
	line := fmt.Sprintf("sweep: %d blobs, %d referenced, %s %d (%s), %d kept within the grace period",
		st.BlobsTotal, st.BlobsMarked, verb, st.BlobsDeleted, units.FormatBytes(uint64(st.FreedBytes)), st.BlobsKeptRecent)
	if st.BlobsKeptLinked > 0 {
		line += fmt.Sprintf(", %d kept for repositories not removed", st.BlobsKeptLinked)
	}
	if st.BlobsKeptUploading > 0 {
		line += fmt.Sprintf(", %d kept for imports in progress", st.BlobsKeptUploading)
	}
	s.progress(fmt.Sprintf("%s, %d errors", line, len(st.Errors)))
}

func (s *sweeper) isMarked(d digest.Digest) bool {
	_, ok := s.marked[d]
	return ok
}

// blobs are the blobs to sweep: those listed ahead, or listed now.
func (s *sweeper) blobs(ctx context.Context) ([]digest.Digest, error) {
	if s.opts.Blobs == nil {
		return s.listBlobs(ctx)
	}
	for _, e := range s.opts.Blobs.errors {
		s.addError("%s", e)
	}
	return s.opts.Blobs.digests, nil
}

// listBlobs lists the blobs in storage: /blobs/<alg>/<2 hex>/<hex>.
func (s *sweeper) listBlobs(ctx context.Context) ([]digest.Digest, error) {
	prefixes, err := s.blobPrefixes(ctx)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	var blobs []digest.Digest
	err = forEachParallel(ctx, s.workers, len(prefixes), func(ctx context.Context, i int) error {
		dirs, err := s.driver.List(ctx, prefixes[i])
		if err != nil {
			if !sweepNotFound(err) {
				s.addError("listing blobs in %s: %v", prefixes[i], err)
			}
			return ctx.Err()
		}
		alg := path.Base(path.Dir(prefixes[i]))
		found := make([]digest.Digest, 0, len(dirs))
		for _, dir := range dirs {
			if d, ok := sweepDigest(alg, path.Base(dir)); ok && storage.BlobDir(d) == dir {
				found = append(found, d)
			}
		}
		mu.Lock()
		blobs = append(blobs, found...)
		mu.Unlock()
		return ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(blobs, func(i, j int) bool { return blobs[i] < blobs[j] })
	return blobs, nil
}

// blobPrefixes lists the blob directories' two-character prefix
// directories (<alg>/<xx>) of the digest algorithms known, sorted.
func (s *sweeper) blobPrefixes(ctx context.Context) ([]string, error) {
	algorithms, err := s.driver.List(ctx, storage.BlobsRoot)
	if err != nil {
		if sweepNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("listing blobs: %w", err)
	}
	var prefixes []string
	for _, alg := range algorithms {
		if !digest.Algorithm(path.Base(alg)).Available() {
			continue
		}
		ps, err := s.driver.List(ctx, alg)
		if err != nil {
			if sweepNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("listing blobs: %w", err)
		}
		prefixes = append(prefixes, ps...)
	}
	sort.Strings(prefixes)
	return prefixes, nil
}

// sweepBlob deletes an unmarked blob unless it is recent; a blob directory
// without data is left alone.
func (s *sweeper) sweepBlob(ctx context.Context, d digest.Digest) {
	fi, err := s.blobStat(ctx, d)
	switch {
	case sweepNotFound(err):
		return
	case err != nil:
		s.addError("blob %s: %v", d, err)
		return
	case fi.dir:
		return
	}
	_, linked := s.recentLinks[d]
	if time.Unix(0, fi.modTime).After(s.cutoff) || linked {
		s.mu.Lock()
		s.stats.BlobsKeptRecent++
		s.mu.Unlock()
		return
	}
	if s.keepUploading(ctx, d) {
		return
	}
	if s.batch != nil {
		s.batchDelete(ctx, d, fi.size)
		return
	}
	if !s.opts.DryRun {
		s.mu.Lock()
		b := condemnedBlob{digest: d, size: fi.size, links: s.layerLinks[d]}
		s.mu.Unlock()
		gone := s.removeBlob(ctx, s.discard, b)
		s.fault(faultDetach)
		if !gone {
			return
		}
	}
	s.countDeleted(fi.size)
}

// blobStat is the Stat of the blob's data, taken by ListBlobs when it
// listed the blob (blob data is never rewritten: distribution skips the
// write of a blob that exists), else now.
func (s *sweeper) blobStat(ctx context.Context, d digest.Digest) (blobInfo, error) {
	if s.opts.Blobs != nil {
		if bi, ok := s.opts.Blobs.info(d); ok {
			return bi, nil
		}
	}
	fi, err := s.driver.Stat(ctx, storage.BlobData(d))
	if err != nil {
		return blobInfo{}, err
	}
	return infoOf(fi), nil
}

// blobInfo is what the sweep needs of a blob's data: 24 bytes, since a
// listing holds one per blob in storage.
type blobInfo struct {
	size    int64
	modTime int64 // Unix nanoseconds
	dir     bool
	known   bool // false: not stat'ed
}

func infoOf(fi storagedriver.FileInfo) blobInfo {
	return blobInfo{size: fi.Size(), modTime: fi.ModTime().UnixNano(), dir: fi.IsDir(), known: true}
}
