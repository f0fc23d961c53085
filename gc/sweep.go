package gc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/manifest/manifestlist"
	_ "github.com/distribution/distribution/v3/manifest/ocischema" // registers the OCI media types
	"github.com/distribution/distribution/v3/manifest/schema2"
	distributionstorage "github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/dvcr/dvcr/storage"
	"github.com/dvcr/dvcr/units"
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
}

// SweepStats is what MarkAndSweep did (or, with DryRun, would do).
type SweepStats struct {
	Repositories     int `json:"repositories"`     // repositories marked
	ManifestsDeleted int `json:"manifestsDeleted"` // untagged manifests deleted
	BlobsTotal       int `json:"blobsTotal"`       // blobs found in storage
	BlobsMarked      int `json:"blobsMarked"`      // blobs found in storage and referenced by a kept manifest
	BlobsDeleted     int `json:"blobsDeleted"`
	BlobsKeptRecent  int `json:"blobsKeptRecent"` // unreferenced but within the grace period
	// BlobsKeptLinked are unreferenced blobs kept because a repository of
	// the Removal that links them was not removed.
	BlobsKeptLinked int   `json:"blobsKeptLinked,omitempty"`
	FreedBytes      int64 `json:"freedBytes"` // sum of sizes of deleted blob data
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

// sweepBlobsRoot is where the distribution storage layout keeps blobs
// (registry/storage/paths.go upstream).
const sweepBlobsRoot = "/docker/registry/v2/blobs"

// sweepMaxManifestSize bounds what is read as a manifest (distribution
// accepts 4 MiB by default).
const sweepMaxManifestSize = 16 << 20

// errSweepCorrupt: a manifest blob that is not a manifest distribution can read.
var errSweepCorrupt = errors.New("corrupt manifest")

type sweeper struct {
	driver  storagedriver.StorageDriver
	opts    SweepOptions
	now     time.Time
	cutoff  time.Time
	workers int

	// manifests caches the parsed manifests by digest: the same image is
	// often in several repositories.
	manifests sync.Map // digest.Digest -> *sweepManifest

	mu          sync.Mutex
	stats       SweepStats
	marked      map[digest.Digest]struct{}
	recentLinks map[digest.Digest]struct{} // blobs linked into a repository within the grace period
	layerLinks  map[digest.Digest][]string // layer link directories, by blob
	deletions   []sweepDeletion

	// removal runs alongside; see removal.go.
	removal *removalState
}

// sweepManifest is what the mark needs from a manifest.
type sweepManifest struct {
	refs    []sweepRef
	subject digest.Digest
}

type sweepRef struct {
	digest   digest.Digest
	manifest bool // a child manifest (entry of an index), to read in turn
}

// sweepRepo is a repository's manifests and tags as found in storage.
type sweepRepo struct {
	name      string
	revisions map[digest.Digest]time.Time // revision link modification times
	tags      []sweepTag
	tagIndex  map[digest.Digest][]string // tags/<t>/index/<alg>/<hex> directories
}

type sweepTag struct {
	name string
	link string // tags/<t>/current/link
}

// sweepDeletion is an untagged manifest to delete.
type sweepDeletion struct {
	repo     string
	digest   digest.Digest
	link     string   // _manifests/revisions/<alg>/<hex>/link
	tagIndex []string // tags/<t>/index/<alg>/<hex> directories
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
	return &sweeper{
		driver:      driver,
		opts:        opts,
		now:         now,
		cutoff:      now.Add(-opts.GracePeriod),
		workers:     workers,
		marked:      make(map[digest.Digest]struct{}),
		recentLinks: make(map[digest.Digest]struct{}),
		layerLinks:  make(map[digest.Digest][]string),
	}
}

func (s *sweeper) run(ctx context.Context) error {
	repos := s.opts.Repositories
	if repos == nil {
		var err error
		if repos, err = s.listRepositories(ctx); err != nil {
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

// listRepositories enumerates every repository, managed or not, through the
// registry's own catalog walk.
func (s *sweeper) listRepositories(ctx context.Context) ([]string, error) {
	ns, err := distributionstorage.NewRegistry(ctx, s.driver)
	if err != nil {
		return nil, err
	}
	enumerator, ok := ns.(distribution.RepositoryEnumerator)
	if !ok {
		return nil, errors.New("the registry cannot enumerate repositories")
	}
	var repos []string
	err = enumerator.Enumerate(ctx, func(name string) error {
		repos = append(repos, name)
		return ctx.Err()
	})
	if err != nil && !sweepNotFound(err) { // an empty registry has no repositories directory
		return nil, fmt.Errorf("listing repositories: %w", err)
	}
	sort.Strings(repos)
	return repos, nil
}

// --- mark -------------------------------------------------------------------

func (s *sweeper) markAll(ctx context.Context, repos []string) error {
	prog := newSweepProgress(s.opts.Progress, "mark", "repositories", len(repos))
	err := sweepParallel(ctx, s.workers, len(repos), func(ctx context.Context, i int) error {
		if err := s.markRepository(ctx, repos[i]); err != nil {
			return err
		}
		s.mu.Lock()
		s.stats.Repositories++
		s.mu.Unlock()
		prog.add(1)
		return nil
	})
	if err != nil {
		return err
	}
	// Layer links are only needed for the blobs that may be swept.
	for d := range s.marked {
		delete(s.layerLinks, d)
	}
	return nil
}

func (s *sweeper) markRepository(ctx context.Context, name string) error {
	repo, err := s.scanRepository(ctx, name)
	if err != nil {
		return err
	}
	kept := make(map[digest.Digest]struct{})
	for _, tag := range repo.tags {
		d, err := s.readTag(ctx, repo, tag)
		if err != nil {
			return err
		}
		if d == "" {
			continue // deleted meanwhile
		}
		if err := s.keep(ctx, repo, d, true, kept); err != nil {
			return err
		}
	}
	for d, modified := range repo.revisions {
		if !s.opts.DeleteUntagged || modified.After(s.cutoff) {
			if err := s.keep(ctx, repo, d, true, kept); err != nil {
				return err
			}
		}
	}
	var untagged []digest.Digest
	for d := range repo.revisions {
		if _, ok := kept[d]; !ok {
			untagged = append(untagged, d)
		}
	}
	if len(untagged) == 0 {
		return nil
	}
	if err := s.keepReferrers(ctx, repo, untagged, kept); err != nil {
		return err
	}
	var deletions []sweepDeletion
	for _, d := range untagged {
		if _, ok := kept[d]; ok {
			continue
		}
		deletions = append(deletions, sweepDeletion{
			repo:     name,
			digest:   d,
			link:     revisionLink(name, d),
			tagIndex: repo.tagIndex[d],
		})
	}
	s.mu.Lock()
	s.deletions = append(s.deletions, deletions...)
	s.mu.Unlock()
	return nil
}

// keepReferrers keeps the untagged manifests whose subject is kept (OCI 1.1
// referrers: signatures, SBOMs, ...), recursively. An untagged manifest that
// cannot be read is not kept: no tag or index reaches it.
func (s *sweeper) keepReferrers(ctx context.Context, repo *sweepRepo, untagged []digest.Digest, kept map[digest.Digest]struct{}) error {
	subjects := make(map[digest.Digest]digest.Digest)
	for _, d := range untagged {
		m, err := s.manifest(ctx, d)
		switch {
		case err == nil:
			if m.subject != "" {
				subjects[d] = m.subject
			}
		case sweepNotFound(err) || errors.Is(err, errSweepCorrupt):
		default:
			return fmt.Errorf("repository %s: reading untagged manifest %s: %w", repo.name, d, err)
		}
	}
	for changed := true; changed; {
		changed = false
		for d, subject := range subjects {
			if _, ok := kept[subject]; !ok {
				continue
			}
			delete(subjects, d)
			if err := s.keep(ctx, repo, d, true, kept); err != nil {
				return err
			}
			changed = true
		}
	}
	return nil
}

// keep keeps manifest d of repo and marks its blob and references; the
// entries of an index are kept in turn. A required manifest must be
// readable; a child of an index that is not in the repository may be absent
// (sparse index).
func (s *sweeper) keep(ctx context.Context, repo *sweepRepo, d digest.Digest, required bool, kept map[digest.Digest]struct{}) error {
	if _, ok := kept[d]; ok {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	kept[d] = struct{}{}
	s.mark(d)
	m, err := s.manifest(ctx, d)
	if err != nil {
		if !required && sweepNotFound(err) {
			return nil
		}
		return fmt.Errorf("repository %s: kept manifest %s: %w", repo.name, d, err)
	}
	for _, ref := range m.refs {
		_, inRepo := repo.revisions[ref.digest]
		if ref.manifest || inRepo {
			if err := s.keep(ctx, repo, ref.digest, inRepo, kept); err != nil {
				return err
			}
			continue
		}
		s.mark(ref.digest)
	}
	return nil
}

func (s *sweeper) mark(d digest.Digest) {
	s.mu.Lock()
	s.marked[d] = struct{}{}
	s.mu.Unlock()
}

// protect marks a manifest that was to be deleted but stays, with what it
// references as far as it was read.
func (s *sweeper) protect(d digest.Digest) {
	seen := make(map[digest.Digest]struct{})
	var walk func(digest.Digest)
	walk = func(d digest.Digest) {
		if _, ok := seen[d]; ok {
			return
		}
		seen[d] = struct{}{}
		s.mark(d)
		if v, ok := s.manifests.Load(d); ok {
			for _, ref := range v.(*sweepManifest).refs {
				walk(ref.digest)
			}
		}
	}
	walk(d)
}

// scanRepository reads a repository's revisions, tags and layer links.
func (s *sweeper) scanRepository(ctx context.Context, name string) (*sweepRepo, error) {
	dir := storage.RepositoryDir(name)
	repo := &sweepRepo{
		name:      name,
		revisions: make(map[digest.Digest]time.Time),
		tagIndex:  make(map[digest.Digest][]string),
	}
	manifests := path.Join(dir, "_manifests")
	err := s.driver.Walk(ctx, manifests, func(fi storagedriver.FileInfo) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if fi.IsDir() {
			return nil
		}
		parts := strings.Split(strings.TrimPrefix(fi.Path(), manifests+"/"), "/")
		switch {
		case len(parts) == 4 && parts[0] == "revisions" && parts[3] == "link":
			d, ok := sweepDigest(parts[1], parts[2])
			switch {
			case ok:
				repo.revisions[d] = fi.ModTime()
			case !s.opts.DeleteUntagged || fi.ModTime().After(s.cutoff):
				// A manifest to keep, but what it references is unknown.
				return fmt.Errorf("repository %s: kept manifest revision %s:%s: invalid or unsupported digest", name, parts[1], parts[2])
			}
		case len(parts) == 4 && parts[0] == "tags" && parts[2] == "current" && parts[3] == "link":
			repo.tags = append(repo.tags, sweepTag{name: parts[1], link: fi.Path()})
		case len(parts) == 6 && parts[0] == "tags" && parts[2] == "index" && parts[5] == "link":
			if d, ok := sweepDigest(parts[3], parts[4]); ok {
				repo.tagIndex[d] = append(repo.tagIndex[d], path.Dir(fi.Path()))
			}
		}
		return nil
	})
	if err != nil && !sweepNotFound(err) {
		return nil, fmt.Errorf("repository %s: listing manifests: %w", name, err)
	}

	layers := path.Join(dir, "_layers")
	recent := make(map[digest.Digest]struct{})
	links := make(map[digest.Digest]string)
	err = s.driver.Walk(ctx, layers, func(fi storagedriver.FileInfo) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if fi.IsDir() {
			return nil
		}
		parts := strings.Split(strings.TrimPrefix(fi.Path(), layers+"/"), "/")
		if len(parts) != 3 || parts[2] != "link" {
			return nil
		}
		d, ok := sweepDigest(parts[0], parts[1])
		if !ok {
			return nil
		}
		if fi.ModTime().After(s.cutoff) {
			recent[d] = struct{}{}
		}
		links[d] = path.Dir(fi.Path())
		return nil
	})
	if err != nil && !sweepNotFound(err) {
		return nil, fmt.Errorf("repository %s: listing layers: %w", name, err)
	}
	s.mu.Lock()
	for d := range recent {
		s.recentLinks[d] = struct{}{}
	}
	for d, dir := range links {
		s.layerLinks[d] = append(s.layerLinks[d], dir)
	}
	s.mu.Unlock()
	sort.Slice(repo.tags, func(i, j int) bool { return repo.tags[i].name < repo.tags[j].name })
	return repo, nil
}

// readTag returns the digest a tag points to, or "" when the tag is gone.
func (s *sweeper) readTag(ctx context.Context, repo *sweepRepo, tag sweepTag) (digest.Digest, error) {
	content, err := s.driver.GetContent(ctx, tag.link)
	if err != nil {
		if sweepNotFound(err) {
			return "", nil
		}
		return "", fmt.Errorf("repository %s: reading tag %s: %w", repo.name, tag.name, err)
	}
	d, err := digest.Parse(strings.TrimSpace(string(content)))
	if err != nil {
		return "", fmt.Errorf("repository %s: tag %s: invalid link %q: %w", repo.name, tag.name, content, err)
	}
	return d, nil
}

// manifest reads and parses the manifest blob d. A missing blob is a
// storagedriver.PathNotFoundError, an unreadable one errSweepCorrupt.
func (s *sweeper) manifest(ctx context.Context, d digest.Digest) (*sweepManifest, error) {
	if v, ok := s.manifests.Load(d); ok {
		return v.(*sweepManifest), nil
	}
	r, err := s.driver.Reader(ctx, blobData(d), 0)
	if err != nil {
		return nil, err
	}
	payload, err := io.ReadAll(io.LimitReader(r, sweepMaxManifestSize+1))
	r.Close()
	if err != nil {
		return nil, err
	}
	if len(payload) > sweepMaxManifestSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", errSweepCorrupt, sweepMaxManifestSize)
	}
	if d.Algorithm().Available() && d.Algorithm().FromBytes(payload) != d {
		return nil, fmt.Errorf("%w: content does not match its digest", errSweepCorrupt)
	}
	m, err := parseSweepManifest(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSweepCorrupt, err)
	}
	s.manifests.Store(d, m)
	return m, nil
}

func parseSweepManifest(payload []byte) (*sweepManifest, error) {
	var probe struct {
		SchemaVersion int             `json:"schemaVersion"`
		MediaType     string          `json:"mediaType"`
		Manifests     json.RawMessage `json:"manifests"`
		Subject       *v1.Descriptor  `json:"subject"`
	}
	if err := json.Unmarshal(payload, &probe); err != nil {
		return nil, err
	}
	if probe.SchemaVersion != 2 {
		return nil, fmt.Errorf("unsupported manifest schema version %d", probe.SchemaVersion)
	}
	mediaType := probe.MediaType
	if mediaType == "" { // OCI allows leaving it out
		mediaType = v1.MediaTypeImageManifest
		if probe.Manifests != nil {
			mediaType = v1.MediaTypeImageIndex
		}
	}
	m, _, err := distribution.UnmarshalManifest(mediaType, payload)
	if err != nil {
		return nil, err
	}
	index := mediaType == v1.MediaTypeImageIndex || mediaType == manifestlist.MediaTypeManifestList
	refs := m.References()
	out := &sweepManifest{refs: make([]sweepRef, 0, len(refs))}
	for _, ref := range refs {
		if err := ref.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("reference %q: %w", ref.Digest, err)
		}
		out.refs = append(out.refs, sweepRef{digest: ref.Digest, manifest: index || sweepManifestType(ref.MediaType)})
	}
	if probe.Subject != nil && probe.Subject.Digest.Validate() == nil {
		out.subject = probe.Subject.Digest
	}
	return out, nil
}

func sweepManifestType(mediaType string) bool {
	switch mediaType {
	case v1.MediaTypeImageManifest, v1.MediaTypeImageIndex, schema2.MediaTypeManifest, manifestlist.MediaTypeManifestList:
		return true
	}
	return false
}

// --- untagged manifests -----------------------------------------------------

func (s *sweeper) deleteManifests(ctx context.Context) error {
	sort.Slice(s.deletions, func(i, j int) bool {
		a, b := s.deletions[i], s.deletions[j]
		return a.repo < b.repo || a.repo == b.repo && a.digest < b.digest
	})
	unit := "deleted"
	if s.opts.DryRun {
		unit = "to delete (dry run)"
	}
	prog := newSweepProgress(s.opts.Progress, "untagged manifests", unit, len(s.deletions))
	return sweepParallel(ctx, s.workers, len(s.deletions), func(ctx context.Context, i int) error {
		s.deleteManifest(ctx, s.deletions[i])
		prog.add(1)
		return nil
	})
}

func (s *sweeper) deleteManifest(ctx context.Context, del sweepDeletion) {
	if s.opts.DryRun {
		s.mu.Lock()
		s.stats.ManifestsDeleted++
		s.mu.Unlock()
		return
	}
	// Checked again: a push of the same manifest rewrites the link.
	fi, err := s.driver.Stat(ctx, del.link)
	switch {
	case sweepNotFound(err):
		return // deleted meanwhile
	case err != nil:
		s.addError("repository %s: manifest %s kept: %v", del.repo, del.digest, err)
		s.protect(del.digest)
		return
	case fi.ModTime().After(s.cutoff):
		s.protect(del.digest) // pushed again meanwhile
		return
	}
	if err := s.driver.Delete(ctx, path.Dir(del.link)); err != nil && !sweepNotFound(err) {
		s.addError("repository %s: deleting manifest %s: %v", del.repo, del.digest, err)
		s.protect(del.digest)
		return
	}
	s.mu.Lock()
	s.stats.ManifestsDeleted++
	s.mu.Unlock()
	for _, dir := range del.tagIndex {
		if err := s.driver.Delete(ctx, dir); err != nil && !sweepNotFound(err) {
			s.addError("repository %s: deleting tag history entry %s: %v", del.repo, dir, err)
		}
	}
}

// --- sweep ------------------------------------------------------------------

// sweepBlobs deletes the unmarked blobs. Blobs linked by repositories of the
// Removal still in storage are held until the last of them is removed, so
// the sweep streams: the workers take blobs from a queue that the removal
// keeps feeding until it ends.
func (s *sweeper) sweepBlobs(ctx context.Context) error {
	blobs, err := s.listBlobs(ctx)
	if err != nil {
		return err
	}
	prog := newSweepProgress(s.opts.Progress, "sweep", "blobs", len(blobs))
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
	err = sweepParallel(ctx, s.workers, s.workers, func(ctx context.Context, _ int) error {
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
	s.mu.Lock()
	s.stats.BlobsKeptLinked = s.removal.held()
	st := s.stats
	s.mu.Unlock()
	prog.add(st.BlobsKeptLinked)
	verb := "deleted"
	if s.opts.DryRun {
		verb = "would delete"
	}
	line := fmt.Sprintf("sweep: %d blobs, %d referenced, %s %d (%s), %d kept within the grace period",
		st.BlobsTotal, st.BlobsMarked, verb, st.BlobsDeleted, units.FormatBytes(uint64(st.FreedBytes)), st.BlobsKeptRecent)
	if st.BlobsKeptLinked > 0 {
		line += fmt.Sprintf(", %d kept for repositories not removed", st.BlobsKeptLinked)
	}
	s.progress(fmt.Sprintf("%s, %d errors", line, len(st.Errors)))
	return nil
}

func (s *sweeper) isMarked(d digest.Digest) bool {
	_, ok := s.marked[d]
	return ok
}

// listBlobs lists the blobs in storage: /blobs/<alg>/<2 hex>/<hex>.
func (s *sweeper) listBlobs(ctx context.Context) ([]digest.Digest, error) {
	algorithms, err := s.driver.List(ctx, sweepBlobsRoot)
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
	var mu sync.Mutex
	var blobs []digest.Digest
	err = sweepParallel(ctx, s.workers, len(prefixes), func(ctx context.Context, i int) error {
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
			if d, ok := sweepDigest(alg, path.Base(dir)); ok && blobDir(d) == dir {
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

// sweepBlob deletes an unmarked blob unless it is recent; a blob directory
// without data is left alone.
func (s *sweeper) sweepBlob(ctx context.Context, d digest.Digest) {
	fi, err := s.driver.Stat(ctx, blobData(d))
	switch {
	case sweepNotFound(err):
		return
	case err != nil:
		s.addError("blob %s: %v", d, err)
		return
	case fi.IsDir():
		return
	}
	_, linked := s.recentLinks[d]
	if fi.ModTime().After(s.cutoff) || linked {
		s.mu.Lock()
		s.stats.BlobsKeptRecent++
		s.mu.Unlock()
		return
	}
	if !s.opts.DryRun {
		if err := s.driver.Delete(ctx, blobDir(d)); err != nil {
			if !sweepNotFound(err) {
				s.addError("deleting blob %s: %v", d, err)
			}
			return
		}
	}
	s.mu.Lock()
	s.stats.BlobsDeleted++
	s.stats.FreedBytes += fi.Size()
	links := s.layerLinks[d]
	s.mu.Unlock()
	if s.opts.DryRun {
		return
	}
	// The repositories' links to the blob are useless now.
	for _, dir := range links {
		if err := s.driver.Delete(ctx, dir); err != nil && !sweepNotFound(err) {
			s.addError("deleting layer link %s: %v", dir, err)
		}
	}
}

// --- helpers ----------------------------------------------------------------

func blobDir(d digest.Digest) string {
	hex := d.Encoded()
	return path.Join(sweepBlobsRoot, string(d.Algorithm()), hex[:2], hex)
}

func blobData(d digest.Digest) string { return path.Join(blobDir(d), "data") }

func revisionLink(repo string, d digest.Digest) string {
	return path.Join(storage.RepositoryDir(repo), "_manifests", "revisions", string(d.Algorithm()), d.Encoded(), "link")
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

// sweepParallel calls fn for 0..n-1 on up to workers goroutines. The first
// error stops the others and is returned.
func sweepParallel(ctx context.Context, workers, n int, fn func(context.Context, int) error) error {
	if n == 0 {
		return ctx.Err()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next  atomic.Int64
		once  sync.Once
		first error
		wg    sync.WaitGroup
	)
	for range min(workers, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() {
						first = err
						cancel()
					})
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// sweepProgress reports "<phase>: <done>/<total> <unit>" at most about every
// second, and at every 10%.
type sweepProgress struct {
	fn                  func(string)
	phase, unit         string
	total               int
	mu                  sync.Mutex
	done, reportedTenth int
	last                time.Time
}

func newSweepProgress(fn func(string), phase, unit string, total int) *sweepProgress {
	return &sweepProgress{fn: fn, phase: phase, unit: unit, total: total, last: time.Now()}
}

func (p *sweepProgress) add(n int) {
	if p.fn == nil || p.total == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	tenth := p.done * 10 / p.total
	now := time.Now()
	if tenth > p.reportedTenth || now.Sub(p.last) >= time.Second {
		p.reportedTenth = tenth
		p.last = now
		p.fn(fmt.Sprintf("%s: %d/%d %s", p.phase, p.done, p.total, p.unit))
	}
}
