// Batched blob deletion on object storage: the sweep deletes the unmarked
// blobs' data files and layer links a thousand keys per request instead of
// one listing and one delete per blob.

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
	paths := make([]string, 0, 2*len(blobs))
	var freed int64
	s.mu.Lock()
	for _, b := range blobs {
		paths = appendBlobFiles(paths, b.digest, s.layerLinks[b.digest])
		freed += b.size
	}
	s.mu.Unlock()
	err := s.opts.DeleteFiles(ctx, paths)
	s.fault(faultDetach)
	s.countBatch(len(blobs), freed, err)
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
