// Untagged manifests: deleting the revision links the mark did not keep,
// each checked again just before (a push may have rewritten it meanwhile).

package gc

import (
	"context"
	"path"
	"sort"

	"github.com/opencontainers/go-digest"
)

// sweepDeletion is an untagged manifest to delete.
type sweepDeletion struct {
	repo     string
	digest   digest.Digest
	link     string   // _manifests/revisions/<alg>/<hex>/link
	tagIndex []string // tags/<t>/index/<alg>/<hex> directories
}

func (s *sweeper) deleteManifests(ctx context.Context) error {
	sort.Slice(s.deletions, func(i, j int) bool {
		a, b := s.deletions[i], s.deletions[j]
		return a.repo < b.repo || a.repo == b.repo && a.digest < b.digest
	})
	unit := "deleted"
	if s.opts.DryRun {
		unit = "to delete (dry run)"
	}
	prog := newPhaseProgress(s.opts.Progress, "untagged manifests", unit, len(s.deletions))
	return forEachParallel(ctx, s.workers, len(s.deletions), func(ctx context.Context, i int) error {
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
	if err := s.discard(ctx, path.Dir(del.link), 0); err != nil && !sweepNotFound(err) {
		s.addError("repository %s: deleting manifest %s: %v", del.repo, del.digest, err)
		s.protect(del.digest)
		return
	}
	s.mu.Lock()
	s.stats.ManifestsDeleted++
	s.mu.Unlock()
	for _, dir := range del.tagIndex {
		if err := s.discard(ctx, dir, 0); err != nil && !sweepNotFound(err) {
			s.addError("repository %s: deleting tag history entry %s: %v", del.repo, dir, err)
		}
	}
}
