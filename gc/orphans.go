// The collector's orphans: the repositories that stay and those a run
// removes, and how it removes them.

package gc

import (
	"context"
	"errors"
	"fmt"

	"github.com/dvcr/dvcr/storage"
)

// keptRepositories are the repositories in storage that are not candidates,
// managed or not: the ones whose blobs the mark keeps.
func keptRepositories(inv *storage.Inventory, candidates []Candidate) []string {
	removed := make(map[string]bool, len(candidates))
	for _, cand := range candidates {
		removed[cand.Path] = true
	}
	kept := make([]string, 0, len(inv.Repos)+len(inv.Unmanaged)-len(candidates))
	for _, r := range inv.Repos {
		if !removed[r.Path] {
			kept = append(kept, r.Path)
		}
	}
	return append(kept, inv.Unmanaged...)
}

// removal deletes the candidates, except those modified within the grace
// period. report, called once the removal has ended, fills res.Deleted and
// res.Skipped in the candidates' order (by path) whatever order the workers
// finished in.
func (c *Collector) removal(res *Result, m deletionMode, candidates []Candidate, tr *trash, progress func(string)) (*Removal, func()) {
	grace := c.Settings.GC.GracePeriod
	cutoff := c.now().Add(-grace)
	outcome := make([]int, len(candidates))
	counter := newPhaseProgress(progress, "repositories", "done", len(candidates))
	removal := &Removal{
		Paths:       make([]string, len(candidates)),
		Concurrency: m.storage.removeConcurrency(),
		Remove: func(ctx context.Context, i int) (bool, error) {
			defer counter.add(1)
			cand := candidates[i]
			if grace > 0 {
				modified, err := storage.LastModified(ctx, c.Driver, cand.Path)
				if err != nil {
					return false, fmt.Errorf("checking %s: %w", cand.Path, err)
				}
				if modified.After(cutoff) {
					outcome[i] = outcomeKept
					return false, nil
				}
			}
			discard := c.Driver.Delete
			if m.storage == storeTrash {
				discard = func(ctx context.Context, p string) error { return tr.discard(ctx, p, 0) }
			}
			err := storage.DiscardRepository(ctx, c.Driver, cand.Path, discard)
			if err != nil && !errors.Is(err, storage.ErrRepositoryNotFound) {
				return false, err
			}
			outcome[i] = outcomeDeleted
			c.fault(faultRemoval)
			return true, nil
		},
	}
	for i, cand := range candidates {
		removal.Paths[i] = cand.Path
	}
	report := func() { c.reportRemoval(res, candidates, outcome, progress) }
	return removal, report
}

// The outcome of a candidate's removal.
const (
	outcomeKept    = iota + 1 // modified within the grace period
	outcomeDeleted            // removed
)

// reportRemoval fills res.Deleted and res.Skipped in the candidates' order
// from their outcomes.
func (c *Collector) reportRemoval(res *Result, candidates []Candidate, outcome []int, progress func(string)) {
	for i, cand := range candidates {
		switch outcome[i] {
		case outcomeDeleted:
			res.Deleted = append(res.Deleted, eligibleImage(cand))
		case outcomeKept:
			res.Skipped = append(res.Skipped, eligibleImage(cand))
			progress(fmt.Sprintf("kept %s: modified within dvcr.gc.gracePeriod (%s)", cand.Path, c.Settings.GC.GracePeriod))
		}
	}
	progress(fmt.Sprintf("repositories: %d deleted, %d kept within the grace period", len(res.Deleted), len(res.Skipped)))
}

func candidatePaths(candidates []Candidate) []string {
	paths := make([]string, len(candidates))
	for i, cand := range candidates {
		paths[i] = cand.Path
	}
	return paths
}
