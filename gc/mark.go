// Mark: which manifests each repository keeps, and so which blobs are
// referenced. A manifest to keep that cannot be read stops the run before
// anything is deleted: a partial mark would delete live blobs.

package gc

import (
	"context"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/dvcr/dvcr/storage"
)

func (s *sweeper) markAll(ctx context.Context, repos []string) error {
	prog := newPhaseProgress(s.opts.Progress, "mark", "repositories", len(repos))
	err := forEachParallel(ctx, s.workers, len(repos), func(ctx context.Context, i int) error {
		if err := s.markRepository(ctx, repos[i]); err != nil {
			return err
		}
		s.mu.Lock()
		s.stats.Repositories++
		s.mu.Unlock()
		prog.add(1)
		s.fault(faultMark)
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
	kept, err := s.keepTaggedAndRecent(ctx, repo)
	if err != nil {
		return err
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
			link:     storage.RevisionLink(name, d),
			tagIndex: repo.tagIndex[d],
		})
	}
	s.mu.Lock()
	s.deletions = append(s.deletions, deletions...)
	s.mu.Unlock()
	return nil
}

// keepTaggedAndRecent marks what repo's tags reach, and its untagged
// manifests when they are kept (untagged deletion off, or within the grace
// period); it returns the manifests kept.
func (s *sweeper) keepTaggedAndRecent(ctx context.Context, repo *sweepRepo) (map[digest.Digest]struct{}, error) {
	kept := make(map[digest.Digest]struct{})
	for _, tag := range repo.tags {
		d, err := s.readTag(ctx, repo, tag)
		if err != nil {
			return nil, err
		}
		if d == "" {
			continue // deleted meanwhile
		}
		if err := s.keep(ctx, repo, d, true, kept); err != nil {
			return nil, err
		}
	}
	for d, modified := range repo.revisions {
		if !s.opts.DeleteUntagged || modified.After(s.cutoff) {
			if err := s.keep(ctx, repo, d, true, kept); err != nil {
				return nil, err
			}
		}
	}
	return kept, nil
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
			if m.Subject != "" {
				subjects[d] = m.Subject
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
	for _, ref := range m.Refs {
		_, inRepo := repo.revisions[ref.Digest]
		if ref.Manifest || inRepo {
			if err := s.keep(ctx, repo, ref.Digest, inRepo, kept); err != nil {
				return err
			}
			continue
		}
		s.mark(ref.Digest)
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
			for _, ref := range v.(*storage.Manifest).Refs {
				walk(ref.Digest)
			}
		}
	}
	walk(d)
}
