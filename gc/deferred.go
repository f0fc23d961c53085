// The deferred run: how dvcr serve, alone on its storage, keeps the
// read-only window to the decisions. It marks ahead of the window while
// writes go on, recording which repositories they touch; inside the window
// it marks again only those, removes the orphans and publishes what is
// condemned; the condemned blobs and manifests are deleted after the
// window (condemn.go), while the registry answers as if they were gone
// (registry/condemned.go).

package gc

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"

	"github.com/dvcr/dvcr/storage"
)

// deferredPlan is what the window condemned, to delete after it.
type deferredPlan struct {
	sweeper   *sweeper
	blobs     []condemnedBlob
	revisions []sweepDeletion
}

// markedAhead is the state of storage read before the window.
type markedAhead struct {
	sweeper    *sweeper
	inv        *storage.Inventory
	candidates []Candidate
	kept       []string                   // the repositories marked ahead
	links      map[string][]digest.Digest // what each candidate links
	// files are each candidate's files, listed ahead on object storage: a
	// candidate still removed in the window was not written since.
	files map[string]*storage.RepositoryFiles
}

// runDeferred is run with the deletion of blobs and untagged manifests
// after the window (deferred.go): only the removed repositories go to the
// trash.
func (c *Collector) runDeferred(ctx context.Context, res *Result, progress func(string), m deletionMode, tr *trash, em *emptier) error {
	plan, err := c.shortWindow(ctx, res, progress, m, tr)
	c.setPhase(ctx, res, phaseFreeing)
	em.windowClosed()
	var freed int64
	if plan != nil {
		if c.Hooks.Hold > 0 {
			progress(fmt.Sprintf("holding the condemned set for %s (%s)", c.Hooks.Hold, HoldEnv))
			select {
			case <-time.After(c.Hooks.Hold):
			case <-ctx.Done():
			}
		}
		err = errors.Join(err, c.deleteCondemned(ctx, progress, m, plan))
		st := plan.sweeper.stats
		sort.Strings(st.Errors)
		res.Sweep = &st
		res.Warnings = append(res.Warnings, st.Errors...)
		freed = st.FreedBytes
	}
	c.free(ctx, res, progress, tr, em, freed)
	return err
}

// shortWindow marks ahead, then decides inside the read-only window and
// publishes the condemned set. The plan is nil when nothing was condemned.
func (c *Collector) shortWindow(ctx context.Context, res *Result, progress func(string), m deletionMode, tr *trash) (plan *deferredPlan, err error) {
	progress("listing blobs in storage")
	blobs, err := ListBlobs(ctx, c.Driver, m.storage.concurrency())
	if err != nil {
		return nil, err
	}
	tracker := c.Live.Gate.TrackWrites()
	stopped := false
	defer func() {
		if !stopped {
			tracker.Stop()
		}
	}()
	ahead, err := c.markAhead(ctx, progress, m.storage, blobs)
	if err != nil {
		return nil, err
	}
	release, err := c.enterReadOnly(ctx, res, progress)
	defer release()
	if err != nil {
		return nil, err
	}
	c.fault(faultReadOnly)
	dirty, all := tracker.Stop()
	stopped = true
	defer func() {
		// Removed repositories may still be in the registry's caches.
		if rErr := c.resetCaches(); rErr != nil {
			err = rErr
			if plan != nil {
				m.condemned.Clear() // nothing of it will be deleted: serve it again
			}
			plan = nil
		}
	}()
	return c.decide(ctx, res, progress, m, tr, ahead, dirty, all)
}

// markAhead lists the repositories and the cluster and marks every
// repository that stays, before the window.
func (c *Collector) markAhead(ctx context.Context, progress func(string), store storageKind, blobs *BlobList) (*markedAhead, error) {
	sel, err := c.selectEligible(ctx, progress)
	if err != nil {
		return nil, err
	}
	s := newSweeper(c.Driver, c.sweepOptions(progress, store, blobs))
	progress("marking ahead of the read-only window")
	if err := s.markAll(ctx, sel.kept); err != nil {
		return nil, fmt.Errorf("mark and sweep: nothing deleted: %w", err)
	}
	ahead := &markedAhead{sweeper: s, inv: sel.inv, candidates: sel.candidates, kept: sel.kept}
	if err := c.listCandidates(ctx, store, ahead); err != nil {
		return nil, fmt.Errorf("listing the repositories to remove: nothing deleted: %w", err)
	}
	return ahead, nil
}

// listCandidates lists what each candidate links; on object storage its
// files too, in the same one listing, for the window to delete them.
func (c *Collector) listCandidates(ctx context.Context, store storageKind, ahead *markedAhead) error {
	ahead.links = make(map[string][]digest.Digest, len(ahead.candidates))
	if store == storeObjects {
		files, err := c.listOrphanFiles(ctx, ahead.candidates)
		for p, f := range files {
			ahead.links[p] = f.Linked()
		}
		ahead.files = files
		return err
	}
	// Not store.concurrency(): on the filesystem that is 0 (the sweep's
	// "default"), on which forEachParallel starts no worker and nothing is
	// listed.
	links := make([][]digest.Digest, len(ahead.candidates))
	err := forEachParallel(ctx, store.removeConcurrency(), len(ahead.candidates), func(ctx context.Context, i int) error {
		l, err := repositoryLinks(ctx, c.Driver, ahead.candidates[i].Path)
		links[i] = l
		return err
	})
	for i, cand := range ahead.candidates {
		ahead.links[cand.Path] = links[i]
	}
	return err
}

// decide is the inside of the window: the cluster again, the mark of the
// repositories written meanwhile, the removal, and the condemned set.
func (c *Collector) decide(ctx context.Context, res *Result, progress func(string), m deletionMode, tr *trash, ahead *markedAhead, dirty map[string]struct{}, all bool) (*deferredPlan, error) {
	progress("listing resources in the cluster")
	live, err := c.listCluster(ctx)
	if err != nil {
		return nil, err
	}
	final, remark := settle(ahead, Eligible(ahead.inv, live, c.Settings.RegistryHost), dirty)
	s := ahead.sweeper
	if all {
		// A write named no repository: everything that stays is marked again.
		progress("a write named no repository: marking every repository again")
		s = newSweeper(c.Driver, s.opts)
		if remark, err = everyRepositoryBut(ctx, c.Driver, final); err != nil {
			return nil, fmt.Errorf("mark and sweep: nothing deleted: %w", err)
		}
	}
	s.forget(dirty)
	progress(fmt.Sprintf("marking %d repositories written or kept since", len(remark)))
	if err := s.markAll(ctx, remark); err != nil {
		return nil, fmt.Errorf("mark and sweep: nothing deleted: %w", err)
	}
	if !all {
		s.stats.Repositories = countUnion(ahead.kept, remark) // marked twice count once
	}
	if err := c.removeOrphans(ctx, res, progress, m, tr, s, final, ahead); err != nil {
		return nil, err
	}
	plan := &deferredPlan{sweeper: s, revisions: s.deletions}
	plan.blobs = s.condemn(ctx)
	m.condemned.Publish(plan.digests(), plan.revisionsByRepo())
	return plan, nil
}

// settle is the final choice: candidates before and inside the window and
// not written meanwhile are removed; the others and every repository
// written meanwhile are marked (again).
func settle(ahead *markedAhead, now []Candidate, dirty map[string]struct{}) (final []Candidate, remark []string) {
	stillCandidate := make(map[string]bool, len(now))
	for _, cand := range now {
		stillCandidate[cand.Path] = true
	}
	wasCandidate := make(map[string]bool, len(ahead.candidates))
	for _, cand := range ahead.candidates {
		wasCandidate[cand.Path] = true
		_, written := dirty[cand.Path]
		if stillCandidate[cand.Path] && !written {
			final = append(final, cand)
			continue
		}
		remark = append(remark, cand.Path)
	}
	for repo := range dirty {
		if !wasCandidate[repo] {
			remark = append(remark, repo)
		}
	}
	return final, remark
}

// removeOrphans removes the final candidates inside the window; what a
// candidate kept on purpose (or failed to remove) links stays marked.
func (c *Collector) removeOrphans(ctx context.Context, res *Result, progress func(string), m deletionMode, tr *trash, s *sweeper, final []Candidate, ahead *markedAhead) error {
	if err := writeJournal(ctx, c.Driver, runID(res.StartedAt), candidatePaths(final)); err != nil {
		return err
	}
	verb := "removing"
	if m.storage == storeTrash {
		verb = "detaching"
	}
	progress(fmt.Sprintf("%s %d repositories", verb, len(final)))
	if m.storage == storeObjects {
		if err := c.removeOrphanObjects(ctx, res, progress, s, final, ahead); err != nil {
			return err
		}
		c.deleteJournal(ctx, res)
		return nil
	}
	removal, report := c.removal(res, m, final, tr, progress)
	removed := make([]bool, len(final))
	err := forEachParallel(ctx, m.storage.removeConcurrency(), len(final), func(ctx context.Context, i int) error {
		var err error
		removed[i], err = removal.Remove(ctx, i)
		return err
	})
	report()
	for i, cand := range final {
		if !removed[i] {
			for _, d := range ahead.links[cand.Path] {
				s.mark(d)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("removing repositories: %w", err)
	}
	c.deleteJournal(ctx, res)
	return nil
}

// deleteJournal deletes the run's journal once every removal has ended. A
// journal left behind only makes the next start finish removals that are
// already done, so failing to delete it is a warning, not the run's error.
func (c *Collector) deleteJournal(ctx context.Context, res *Result) {
	if err := c.Driver.Delete(ctx, journalPath(runID(res.StartedAt))); err != nil && !sweepNotFound(err) {
		res.Warnings = append(res.Warnings, "deleting the journal: "+err.Error())
	}
}

func (p *deferredPlan) digests() []digest.Digest {
	out := make([]digest.Digest, len(p.blobs))
	for i, b := range p.blobs {
		out[i] = b.digest
	}
	return out
}

func (p *deferredPlan) revisionsByRepo() map[string][]digest.Digest {
	out := make(map[string][]digest.Digest)
	for _, del := range p.revisions {
		out[del.repo] = append(out[del.repo], del.digest)
	}
	return out
}

// everyRepositoryBut lists the repositories in storage but those removed.
func everyRepositoryBut(ctx context.Context, driver storagedriver.StorageDriver, removed []Candidate) ([]string, error) {
	paths, err := storage.RepositoryPaths(ctx, driver)
	if err != nil {
		return nil, err
	}
	gone := make(map[string]bool, len(removed))
	for _, cand := range removed {
		gone[cand.Path] = true
	}
	kept := paths[:0]
	for _, p := range paths {
		if !gone[p] {
			kept = append(kept, p)
		}
	}
	return kept, nil
}

// countUnion is the number of distinct names in a and b.
func countUnion(a, b []string) int {
	seen := make(map[string]struct{}, len(a)+len(b))
	for _, list := range [][]string{a, b} {
		for _, name := range list {
			seen[name] = struct{}{}
		}
	}
	return len(seen)
}
