package gc

import (
	"context"
	"fmt"
	"path"
	"sync"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"

	"github.com/dvcr/dvcr/storage"
)

// Removal deletes whole repositories (the garbage collector's orphans) while
// MarkAndSweep marks the others and sweeps.
//
// Deleting files is what a run spends its time on, so the two overlap: the
// repositories of a Removal are not marked; instead every blob one of them
// links (its layer links and manifest revisions, which is everything its
// manifests may reference: distribution refuses a manifest whose blobs are
// not linked into the repository) is held until every repository of the
// Removal linking it has been removed, then swept like any other unmarked
// blob. A repository that stays — kept on purpose, failed or not reached —
// keeps the blobs it links.
type Removal struct {
	// Paths are the repositories' paths in storage.
	Paths []string
	// Remove deletes Paths[i]; removed is false when it was kept on
	// purpose. An error stops the removal (calls in flight finish) and
	// fails MarkAndSweep, which still sweeps what was released.
	Remove func(ctx context.Context, i int) (removed bool, err error)
	// Concurrency is the number of Remove calls at once; 0 = 8.
	Concurrency int
}

// removalState is a Removal in progress. A nil *removalState is no removal.
type removalState struct {
	links [][]digest.Digest // the blobs each path links
	done  chan struct{}     // closed when the removal has ended
	err   error             // set before done is closed

	mu      sync.Mutex
	pending map[digest.Digest]int      // repositories not removed yet, by blob they link
	waiting map[digest.Digest]struct{} // unmarked blobs waiting for their repositories
	queue   chan<- digest.Digest       // the sweep's queue, once it runs
}

// startRemoval lists the links of the Removal's repositories and starts
// removing them. Nothing is deleted when listing fails.
func (s *sweeper) startRemoval(ctx context.Context) error {
	r := s.opts.Removal
	if r == nil {
		return nil
	}
	if s.opts.DryRun {
		return fmt.Errorf("%w: a Removal cannot be dry run", ErrInvalidOptions)
	}
	st := &removalState{
		links:   make([][]digest.Digest, len(r.Paths)),
		done:    make(chan struct{}),
		pending: make(map[digest.Digest]int),
		waiting: make(map[digest.Digest]struct{}),
	}
	err := forEachParallel(ctx, s.workers, len(r.Paths), func(ctx context.Context, i int) error {
		links, err := repositoryLinks(ctx, s.driver, r.Paths[i])
		st.links[i] = links
		return err
	})
	if err != nil {
		return err
	}
	for _, links := range st.links {
		for _, d := range links {
			st.pending[d]++
		}
	}
	s.removal = st
	workers := r.Concurrency
	if workers <= 0 {
		workers = 8
	}
	go func() {
		defer close(st.done)
		st.err = forEachParallel(ctx, workers, len(r.Paths), func(ctx context.Context, i int) error {
			removed, err := r.Remove(ctx, i)
			if err != nil {
				return err
			}
			if removed {
				st.release(st.links[i])
			}
			return nil
		})
	}()
	return nil
}

// waitRemoval waits for the removal to end and returns its error.
func (s *sweeper) waitRemoval() error {
	if s.removal == nil {
		return nil
	}
	<-s.removal.done
	return s.removal.err
}

// repositoryLinks lists the blobs a repository links: _layers/<alg>/<hex>
// and _manifests/revisions/<alg>/<hex>.
func repositoryLinks(ctx context.Context, driver storagedriver.StorageDriver, repoPath string) ([]digest.Digest, error) {
	dir := storage.RepositoryDir(repoPath)
	var links []digest.Digest
	for _, sub := range []string{"_layers", "_manifests/revisions"} {
		algorithms, err := driver.List(ctx, path.Join(dir, sub))
		if sweepNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("repository %s: listing %s: %w", repoPath, sub, err)
		}
		for _, alg := range algorithms {
			entries, err := driver.List(ctx, alg)
			if sweepNotFound(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("repository %s: listing %s: %w", repoPath, alg, err)
			}
			for _, e := range entries {
				if d, ok := sweepDigest(path.Base(alg), path.Base(e)); ok {
					links = append(links, d)
				}
			}
		}
	}
	return links, nil
}

// release is called when a repository linking these blobs is gone: the
// blobs no other pending repository links are queued if the sweep waits for
// them.
func (st *removalState) release(links []digest.Digest) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, d := range links {
		st.pending[d]--
		if st.pending[d] > 0 {
			continue
		}
		delete(st.pending, d)
		if _, ok := st.waiting[d]; ok && st.queue != nil {
			delete(st.waiting, d)
			st.queue <- d
		}
	}
}

// enqueue queues the unmarked blobs no pending repository links and keeps
// the others for release. The queue must hold every blob.
func (st *removalState) enqueue(unmarked []digest.Digest, queue chan<- digest.Digest) {
	if st == nil {
		for _, d := range unmarked {
			queue <- d
		}
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, d := range unmarked {
		if st.pending[d] > 0 {
			st.waiting[d] = struct{}{}
		} else {
			queue <- d
		}
	}
	st.queue = queue
}

// wait returns when no more blobs can be released.
func (st *removalState) wait() {
	if st != nil {
		<-st.done
	}
}

// held is the number of unmarked blobs never released: linked by
// repositories that stay.
func (st *removalState) held() int {
	if st == nil {
		return 0
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.waiting)
}
