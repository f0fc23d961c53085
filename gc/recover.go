// Recovery after a run the process did not survive.

package gc

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dvcr/dvcr/storage"
)

// ReasonInterrupted is the reason of the record of a run the process did
// not survive.
const ReasonInterrupted = "interrupted"

// Recover finishes what a run stopped half way left behind: it records
// the run as failed with reason "interrupted", and completes the removal of
// the repositories its journal names (a legacy repository whose _manifests
// was detached but not its _layers). The trash it left is emptied by
// FreeLeftovers or the next run.
//
// Call it at start, before the registry takes requests: finishing a
// removal must not race a first push, which also has _layers before its
// _manifests.
func (c *Collector) Recover(ctx context.Context, progress func(string)) error {
	if !c.running.CompareAndSwap(false, true) {
		return ErrRunInProgress
	}
	defer c.running.Store(false)
	return c.recover(ctx, serialized(progress))
}

func (c *Collector) recover(ctx context.Context, progress func(string)) error {
	marker, err := readMarker(ctx, c.Driver)
	if err != nil {
		return fmt.Errorf("recovering from an interrupted garbage collection: %w", err)
	}
	if marker != nil {
		progress(fmt.Sprintf("garbage collection run started at %s was interrupted during %s: recording it as failed",
			marker.StartedAt.Format("2006-01-02T15:04:05Z07:00"), marker.Phase))
		if err := c.recordInterrupted(ctx, marker); err != nil {
			return err
		}
	}
	journals, err := readJournals(ctx, c.Driver)
	if err != nil {
		return fmt.Errorf("recovering from an interrupted garbage collection: %w", err)
	}
	for file, repos := range journals {
		if err := c.finishRemovals(ctx, repos, progress); err != nil {
			return err
		}
		if err := c.Driver.Delete(ctx, file); err != nil && !sweepNotFound(err) {
			return fmt.Errorf("deleting %s: %w", file, err)
		}
	}
	if marker != nil {
		if err := c.Driver.Delete(ctx, markerPath); err != nil && !sweepNotFound(err) {
			return fmt.Errorf("deleting %s: %w", markerPath, err)
		}
	}
	return nil
}

func (c *Collector) recordInterrupted(ctx context.Context, m *runMarker) error {
	detected := c.now()
	res := Result{
		Result:     ResultFail,
		Reason:     ReasonInterrupted,
		Trigger:    m.Trigger,
		StartedAt:  m.StartedAt,
		FinishedAt: detected,
		Deleted:    []EligibleImage{},
		Error:      fmt.Sprintf("interrupted: the process stopped during %s; what it left is finished at restart and by the next run", m.Phase),
	}
	c.fillUsage(ctx, &res)
	res.Message = "Garbage collection failed: " + res.Error + ". " + FreedMessage(&res)
	if c.Store != nil {
		if err := c.Store.Add(ctx, res); err != nil {
			return fmt.Errorf("recording the interrupted garbage collection run: %w", err)
		}
	}
	if c.Metrics != nil {
		c.Metrics.observe(&res)
	}
	return nil
}

// finishRemovals completes the repositories a journal names that were
// removed half way.
func (c *Collector) finishRemovals(ctx context.Context, repos []string, progress func(string)) error {
	var finished []string
	for _, repo := range repos {
		ok, err := storage.FinishRemoval(ctx, c.Driver, repo, c.Driver.Delete)
		if err != nil {
			return fmt.Errorf("recovering from an interrupted garbage collection: %w", err)
		}
		if ok {
			finished = append(finished, repo)
		}
	}
	if len(finished) > 0 {
		progress("finished removing " + strings.Join(finished, ", "))
	}
	return nil
}

// FreeLeftovers deletes what interrupted runs left in the trash. It runs
// alongside the registry (nothing in the trash is reachable from it) and
// next to a run, which waits for it before emptying the trash itself.
func (c *Collector) FreeLeftovers(ctx context.Context, progress func(string)) (int64, error) {
	c.trashMu.Lock()
	defer c.trashMu.Unlock()
	em := newEmptier(c.Driver, nil, nil)
	em.start(ctx, false)
	res := em.finish(ctx, serialized(progress))
	if len(res.Errors) > 0 {
		return res.Freed, errors.New(strings.Join(res.Errors, "; "))
	}
	return res.Freed, nil
}
