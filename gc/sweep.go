// Mark and sweep: the options, the statistics and the run's three phases
// (mark.go, untagged.go, blobsweep.go) put in order. The storage layout it
// walks is the storage package's.

package gc

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"

	"github.com/dvcr/dvcr/storage"
)

// SweepOptions configure MarkAndSweep.
type SweepOptions struct {
	// GracePeriod: nothing modified more recently than Now()-GracePeriod is
	// deleted (0 = no protection).
	GracePeriod time.Duration
	// Now is the clock of the grace period; nil = time.Now.
	Now func() time.Time
	// DeleteUntagged deletes the manifests no tag reaches (directly or
	// through a tagged index, or as a referrer of a kept manifest).
	DeleteUntagged bool
	// DryRun computes everything and deletes nothing.
	DryRun bool
	// Progress receives progress lines, at most about every second or every
	// 10% of a phase. Calls are serialized.
	Progress func(string)
	// Concurrency is the number of parallel driver calls; 0 = 8.
	Concurrency int
	// Repositories, when not nil, are the repositories to mark instead of
	// every repository in storage. They must include every repository
	// that stays: a repository left out loses its blobs.
	Repositories []string
	// Removal, when not nil, deletes whole repositories alongside the mark
	// and sweep. They must not be among Repositories.
	Removal *Removal
	// Discard, when not nil, takes what the sweep deletes out of the
	// registry's tree instead of deleting it (the collector's trash); size
	// is the blob bytes the path holds. nil deletes in place.
	Discard func(ctx context.Context, path string, size int64) error
	// DeleteFiles, when not nil and Discard is nil, deletes files in
	// batches (object storage, storage.ObjectDeleter): the unmarked blobs'
	// data and layer links go a thousand keys per request instead of one
	// driver Delete (a listing and a delete) per path.
	DeleteFiles func(ctx context.Context, paths []string) error
	// Fault, when not nil, is called at the fault points (fault.go).
	Fault func(point string)
	// Blobs, when not nil, are the blobs to sweep, listed by ListBlobs
	// before the registry became read-only, to keep the listing out of the
	// window. A blob written after the listing is not among them and stays
	// until the next run; one listed and referenced by a manifest pushed
	// meanwhile is marked, since the mark comes after.
	Blobs *BlobList
}

// BlobList is the blobs found in storage by ListBlobs.
type BlobList struct {
	digests []digest.Digest // sorted
	infos   []blobInfo      // of each blob's data, by index in digests
	errors  []string        // prefixes that could not be listed
}

// ListBlobs lists the blobs in storage and stats their data, with
// concurrency parallel calls (0 = 8). A blob whose data cannot be stat'ed
// is stat'ed again by the sweep.
func ListBlobs(ctx context.Context, driver storagedriver.StorageDriver, concurrency int) (*BlobList, error) {
	s := newSweeper(driver, SweepOptions{Concurrency: concurrency})
	digests, err := s.listBlobs(ctx)
	if err != nil {
		return nil, err
	}
	infos := make([]blobInfo, len(digests))
	err = forEachParallel(ctx, s.workers, len(digests), func(ctx context.Context, i int) error {
		if fi, err := driver.Stat(ctx, storage.BlobData(digests[i])); err == nil {
			infos[i] = infoOf(fi)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &BlobList{digests: digests, infos: infos, errors: s.stats.Errors}, nil
}

// info is the listing's Stat of blob d; false when it has none.
func (l *BlobList) info(d digest.Digest) (blobInfo, bool) {
	i := sort.Search(len(l.digests), func(i int) bool { return l.digests[i] >= d })
	if i == len(l.digests) || l.digests[i] != d || !l.infos[i].known {
		return blobInfo{}, false
	}
	return l.infos[i], true
}

// SweepStats is what MarkAndSweep did (or, with DryRun, would do).
type SweepStats struct {
	Repositories     int `json:"repositories"`     // repositories marked
	ManifestsDeleted int `json:"manifestsDeleted"` // untagged manifests deleted
	BlobsTotal       int `json:"blobsTotal"`       // blobs found in storage
	BlobsMarked      int `json:"blobsMarked"`      // blobs found in storage and referenced by a kept manifest
	BlobsDeleted     int `json:"blobsDeleted"`
	BlobsKeptRecent  int `json:"blobsKeptRecent"` // unreferenced but within the grace period
	// BlobsKeptUploading are unreferenced blobs an import in progress
	// committed, whose manifest has not arrived yet (uploading.go).
	BlobsKeptUploading int `json:"blobsKeptUploading,omitempty"`
	// BlobsKeptLinked are unreferenced blobs kept because a repository of
	// the Removal that links them was not removed.
	BlobsKeptLinked int `json:"blobsKeptLinked,omitempty"`
	// BlobsWrittenAgain were condemned but uploaded again before the
	// deletion after the window reached them: they stay.
	BlobsWrittenAgain int   `json:"blobsWrittenAgain,omitempty"`
	FreedBytes        int64 `json:"freedBytes"` // sum of sizes of the blob data deleted (or moved to the trash)
	// Errors are per-item errors that did not stop the sweep (a blob that
	// could not be deleted, ...).
	Errors []string `json:"errors,omitempty"`
}

// MarkAndSweep marks every blob referenced by a manifest kept in any
// repository, then deletes the unmarked blobs.
//
// It works on the storage driver only (filesystem, S3, ...), in three phases:
//
//   - mark: every repository, managed or not (or those of
//     opts.Repositories), is read. Its tags, the
//     manifests they reach (recursively through indexes), the manifests whose
//     revision link is within the grace period, the referrers (subject) of
//     kept manifests, and with DeleteUntagged false every manifest, are kept;
//     a kept manifest marks its own blob and every blob it references. If any
//     kept manifest cannot be read or parsed, MarkAndSweep fails before
//     deleting anything: a partial mark would delete live blobs.
//   - untagged manifests: with DeleteUntagged, the revision links (and tag
//     history entries) of the manifests not kept are deleted.
//   - sweep: each unmarked blob whose data is older than the grace period is
//     deleted, with the repositories' layer links to it. A blob linked into a
//     repository within the grace period (a cross-repository mount in flight)
//     is kept too. Errors on single items are collected in Errors.
//
// With opts.Removal, whole repositories are deleted alongside the three
// phases, and the blobs they link are swept only once they are gone (see
// Removal). MarkAndSweep returns only after the removal has ended.
//
// The returned stats are filled as far as the run went, also on error.
func MarkAndSweep(ctx context.Context, driver storagedriver.StorageDriver, opts SweepOptions) (SweepStats, error) {
	s := newSweeper(driver, opts)
	err := s.run(ctx)
	if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		err = fmt.Errorf("%w (%w)", err, ctx.Err())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	stats := s.stats
	sort.Strings(stats.Errors)
	return stats, err
}

type sweeper struct {
	driver  storagedriver.StorageDriver
	opts    SweepOptions
	now     time.Time
	cutoff  time.Time
	workers int

	// manifests caches the parsed manifests by digest: the same image is
	// often in several repositories.
	manifests sync.Map // digest.Digest -> *storage.Manifest

	mu          sync.Mutex
	stats       SweepStats
	marked      map[digest.Digest]struct{}
	recentLinks map[digest.Digest]struct{} // blobs linked into a repository within the grace period
	layerLinks  map[digest.Digest][]string // layer link directories, by blob
	tagsMoved   map[string]time.Time       // repository directory -> when its tags last moved (uploading.go)
	deletions   []sweepDeletion

	// removal runs alongside; see removal.go.
	removal *removalState
	// batch gathers condemned blobs with DeleteFiles; nil otherwise.
	batch *blobBatch
}

func newSweeper(driver storagedriver.StorageDriver, opts SweepOptions) *sweeper {
	now := time.Now()
	if opts.Now != nil {
		now = opts.Now()
	}
	workers := opts.Concurrency
	if workers <= 0 {
		workers = 8
	}
	s := &sweeper{
		driver:      driver,
		opts:        opts,
		now:         now,
		cutoff:      now.Add(-opts.GracePeriod),
		workers:     workers,
		marked:      make(map[digest.Digest]struct{}),
		recentLinks: make(map[digest.Digest]struct{}),
		layerLinks:  make(map[digest.Digest][]string),
		tagsMoved:   make(map[string]time.Time),
	}
	if opts.DeleteFiles != nil && opts.Discard == nil && !opts.DryRun {
		s.batch = &blobBatch{}
	}
	return s
}

func (s *sweeper) run(ctx context.Context) error {
	repos := s.opts.Repositories
	if repos == nil {
		var err error
		if repos, err = storage.RepositoryPaths(ctx, s.driver); err != nil {
			return fmt.Errorf("mark and sweep: nothing deleted: %w", err)
		}
	}
	if err := s.startRemoval(ctx); err != nil {
		return fmt.Errorf("mark and sweep: nothing deleted: %w", err)
	}
	// Whatever happens below, the removal has ended when run returns.
	err := s.markAndSweep(ctx, repos)
	return errors.Join(err, s.waitRemoval())
}

func (s *sweeper) markAndSweep(ctx context.Context, repos []string) error {
	if err := s.markAll(ctx, repos); err != nil {
		return fmt.Errorf("mark and sweep: no blob or manifest deleted: %w", err)
	}
	s.progress(fmt.Sprintf("mark: %d repositories, %d blobs referenced, %d untagged manifests to delete",
		len(repos), len(s.marked), len(s.deletions)))
	if err := s.deleteManifests(ctx); err != nil {
		return fmt.Errorf("mark and sweep: deleting untagged manifests: %w", err)
	}
	if err := s.sweepBlobs(ctx); err != nil {
		return fmt.Errorf("mark and sweep: sweeping blobs: %w", err)
	}
	return nil
}

// discard deletes p, or hands it to opts.Discard.
func (s *sweeper) discard(ctx context.Context, p string, size int64) error {
	if s.opts.Discard != nil {
		return s.opts.Discard(ctx, p, size)
	}
	return s.driver.Delete(ctx, p)
}

func (s *sweeper) fault(point string) {
	if s.opts.Fault != nil {
		s.opts.Fault(point)
	}
}

func (s *sweeper) progress(line string) {
	if s.opts.Progress != nil {
		s.opts.Progress(line)
	}
}

func (s *sweeper) addError(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Errors = append(s.stats.Errors, fmt.Sprintf(format, args...))
}

// sweepDigest is the digest named by path elements <alg>/<hex>.
func sweepDigest(alg, hex string) (digest.Digest, bool) {
	d := digest.NewDigestFromEncoded(digest.Algorithm(alg), hex)
	if d.Validate() != nil {
		return "", false
	}
	return d, true
}

func sweepNotFound(err error) bool {
	var pnf storagedriver.PathNotFoundError
	return err != nil && errors.As(err, &pnf)
}
