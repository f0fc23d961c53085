// Deleting blobs on object storage (S3): a blob is its data file and the
// layer links to it, deleted a thousand keys per request instead of one
// listing and one delete per path. deleteBlobObjects is the one place that
// does it, for the sweep inside the window (which gathers the blobs it
// condemns into batches as it goes) and for the deletion after the window
// (condemn.go). The orphan repositories' files go by orphanobjects.go.

package gc

import (
	"context"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/dvcr/dvcr/storage"
)

// batchBlobs is how many blobs a batch gathers before it is deleted; with
// their layer links they fill about one DeleteObjects request.
const batchBlobs = 500

type pendingBlob struct {
	digest digest.Digest
	size   int64
}

// blobBatch gathers condemned blobs; the worker whose addition fills it
// deletes it.
type blobBatch struct {
	mu      sync.Mutex
	pending []pendingBlob
}

// add queues a condemned blob, deleting the batch when it is full.
func (s *sweeper) batchDelete(ctx context.Context, d digest.Digest, size int64) {
	b := s.batch
	b.mu.Lock()
	b.pending = append(b.pending, pendingBlob{d, size})
	var full []pendingBlob
	if len(b.pending) >= batchBlobs {
		full, b.pending = b.pending, nil
	}
	b.mu.Unlock()
	if full != nil {
		s.deleteBatch(ctx, full)
	}
}

// flushBatch deletes what is still queued.
func (s *sweeper) flushBatch(ctx context.Context) {
	b := s.batch
	b.mu.Lock()
	rest := b.pending
	b.pending = nil
	b.mu.Unlock()
	if len(rest) > 0 {
		s.deleteBatch(ctx, rest)
	}
}

// deleteBatch deletes the blobs' data and the repositories' links to them
// in as few requests as the keys need; the blobs count as deleted only when
// the request succeeded.
func (s *sweeper) deleteBatch(ctx context.Context, blobs []pendingBlob) {
	batch := make([]condemnedBlob, len(blobs))
	var freed int64
	s.mu.Lock()
	for i, b := range blobs {
		batch[i] = condemnedBlob{digest: b.digest, size: b.size, links: s.layerLinks[b.digest]}
		freed += b.size
	}
	s.mu.Unlock()
	err := deleteBlobObjects(ctx, s.opts.DeleteFiles, batch)
	s.fault(faultDetach)
	s.countBatch(len(blobs), freed, err)
}

// deleteBlobObjects deletes blobs on object storage with deleteFiles
// (storage.ObjectDeleter): each one's data file and its layer links, in as
// few requests as the keys need.
func deleteBlobObjects(ctx context.Context, deleteFiles func(context.Context, []string) error, blobs []condemnedBlob) error {
	paths := make([]string, 0, 2*len(blobs))
	for _, b := range blobs {
		paths = appendBlobFiles(paths, b.digest, b.links)
	}
	return deleteFiles(ctx, paths)
}

// deleteBlobBatch deletes condemned blobs on object storage: their data
// and layer links a thousand keys per request (storage.ObjectDeleter).
func (c *Collector) deleteBlobBatch(ctx context.Context, s *sweeper, set CondemnedSet, batch []condemnedBlob) {
	var (
		releases []func(bool)
		claimed  []condemnedBlob
		freed    int64
	)
	for _, b := range batch {
		release, ok := set.ClaimBlob(b.digest)
		if !ok {
			s.countKeptWritten()
			continue
		}
		releases = append(releases, release)
		claimed = append(claimed, b)
		freed += b.size
	}
	if len(releases) == 0 {
		return
	}
	err := deleteBlobObjects(ctx, c.Objects.DeleteFiles, claimed)
	for _, release := range releases {
		release(err == nil)
	}
	c.fault(faultDetach)
	s.countBatch(len(releases), freed, err)
}

// appendBlobFiles appends a blob's data file and the layer link files of
// the directories links: the keys that delete it on object storage.
func appendBlobFiles(paths []string, d digest.Digest, links []string) []string {
	paths = append(paths, storage.BlobData(d))
	for _, dir := range links {
		paths = append(paths, dir+"/link")
	}
	return paths
}

// countBatch counts a batch of n blobs deleted, freeing freed bytes, or
// records why it failed.
func (s *sweeper) countBatch(n int, freed int64, err error) {
	if err != nil {
		s.addError("deleting %d blobs: %v", n, err)
		return
	}
	s.mu.Lock()
	s.stats.BlobsDeleted += n
	s.stats.FreedBytes += freed
	s.mu.Unlock()
}
