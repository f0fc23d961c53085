// Removing orphan repositories on object storage: one recursive listing per
// repository, then every repository's files a thousand keys per request,
// the _manifests files of all of them first.

package gc

import (
	"context"
	"errors"
	"fmt"

	"github.com/dvcr/dvcr/storage"
)

// listOrphanFiles lists the candidates' files ahead of the window, by
// path; a candidate gone meanwhile has no entry.
func (c *Collector) listOrphanFiles(ctx context.Context, candidates []Candidate) (map[string]*storage.RepositoryFiles, error) {
	files := make([]*storage.RepositoryFiles, len(candidates))
	err := forEachParallel(ctx, objectStoreConcurrency, len(candidates), func(ctx context.Context, i int) error {
		f, err := storage.ListRepositoryFiles(ctx, c.Driver, candidates[i].Path)
		if errors.Is(err, storage.ErrRepositoryNotFound) {
			return nil
		}
		files[i] = f
		return err
	})
	if err != nil {
		return nil, err
	}
	byPath := make(map[string]*storage.RepositoryFiles, len(candidates))
	for i, f := range files {
		if f != nil {
			byPath[candidates[i].Path] = f
		}
	}
	return byPath, nil
}

// removeOrphanObjects removes the final candidates on object storage from
// the files listed ahead (none was written since), except those modified
// within the grace period; what a candidate that stays links is marked. A
// removal that stops between the two batches leaves repositories without
// _manifests, which no request can reach and the journal's recovery
// finishes.
func (c *Collector) removeOrphanObjects(ctx context.Context, res *Result, progress func(string), s *sweeper, final []Candidate, ahead *markedAhead) error {
	cutoff := c.now().Add(-c.Settings.GC.GracePeriod)
	outcome := make([]int, len(final))
	files := make([]*storage.RepositoryFiles, len(final))
	for i, cand := range final {
		f := ahead.files[cand.Path]
		switch {
		case f == nil:
			outcome[i] = outcomeDeleted // gone already
		case c.Settings.GC.GracePeriod > 0 && f.Modified.After(cutoff):
			outcome[i] = outcomeKept
		default:
			files[i] = f
		}
	}
	err := c.deleteRepositoryFiles(ctx, files)
	for i, f := range files {
		if f != nil && err == nil {
			outcome[i] = outcomeDeleted
		}
		if outcome[i] != outcomeDeleted {
			for _, d := range ahead.links[final[i].Path] {
				s.mark(d)
			}
		}
	}
	c.reportRemoval(res, final, outcome, progress)
	if err != nil {
		return fmt.Errorf("removing repositories: %w", err)
	}
	return nil
}

// deleteRepositoryFiles deletes every _manifests file, then the rest.
func (c *Collector) deleteRepositoryFiles(ctx context.Context, files []*storage.RepositoryFiles) error {
	var manifests, others []string
	for _, f := range files {
		if f != nil {
			manifests = append(manifests, f.Manifests...)
			others = append(others, f.Others...)
		}
	}
	if err := c.deleteObjects(ctx, manifests); err != nil {
		return err
	}
	c.fault(faultRemoval)
	return c.deleteObjects(ctx, others)
}

// deleteObjects deletes files a thousand keys per request, several
// requests in flight.
func (c *Collector) deleteObjects(ctx context.Context, paths []string) error {
	n := storage.MaxDeleteKeys
	requests := (len(paths) + n - 1) / n
	return forEachParallel(ctx, objectStoreConcurrency, requests, func(ctx context.Context, i int) error {
		return c.Objects.DeleteFiles(ctx, paths[i*n:min((i+1)*n, len(paths))])
	})
}
