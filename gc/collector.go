package gc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"k8s.io/client-go/rest"

	"github.com/dvcr/dvcr/config"
	"github.com/dvcr/dvcr/naming"
	"github.com/dvcr/dvcr/registry"
	"github.com/dvcr/dvcr/storage"
)

// LiveRegistry is the running registry the collector switches read-only and
// whose caches it drops after deleting blobs.
type LiveRegistry interface {
	Gate() *registry.Gate
	ResetCaches() error
}

// Collector runs garbage collection: read-only window, inventories,
// selection, repository removal, mark and sweep, result record.
type Collector struct {
	Driver storagedriver.StorageDriver
	// NewLister connects to the cluster; called at each run so that a
	// rotated service account token or a late API server is picked up.
	NewLister func() (Lister, error)
	// Live is the registry in this process; nil when working offline on
	// storage with no dvcr serve running.
	Live     LiveRegistry
	Settings config.DVCR
	// Usage reports the volume's space; nil or ErrUsageUnknown leave it 0.
	Usage   func() (storage.Usage, error)
	Store   *ResultStore
	Metrics *Metrics
	Now     func() time.Time

	running atomic.Bool
}

// Running reports whether a run is in progress.
func (c *Collector) Running() bool { return c.running.Load() }

// Run performs one garbage collection run and records its result. Only one
// run goes at a time: a second one fails at once with ErrRunInProgress. The
// returned error is the run's failure; the Result is returned either way
// (nil only for ErrRunInProgress). progress receives the run's progress
// lines, one call at a time.
func (c *Collector) Run(ctx context.Context, trigger string, progress func(string)) (*Result, error) {
	if !c.running.CompareAndSwap(false, true) {
		return nil, ErrRunInProgress
	}
	defer c.running.Store(false)
	progress = serialized(progress)
	res := &Result{Trigger: trigger, StartedAt: c.now(), Deleted: []EligibleImage{}}
	runErr := c.runGuarded(ctx, res, progress)
	c.finish(res, runErr)
	// The record must be written even when the run's context has ended.
	recordCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if c.Store != nil {
		if err := c.Store.Add(recordCtx, *res); err != nil {
			res.Warnings = append(res.Warnings, err.Error())
		}
	}
	if c.Metrics != nil {
		c.Metrics.observe(res)
	}
	progress(res.Message)
	return res, runErr
}

func (c *Collector) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// runGuarded turns a panic into a failed run; the deferred release of the
// read-only window in run has already happened by then.
func (c *Collector) runGuarded(ctx context.Context, res *Result, progress func(string)) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("garbage collection panicked: %v", v)
		}
	}()
	ctx, cancel := context.WithTimeoutCause(ctx, c.Settings.GC.Timeout,
		fmt.Errorf("garbage collection exceeded dvcr.gc.timeout (%s)", c.Settings.GC.Timeout))
	defer cancel()
	err = c.run(ctx, res, progress)
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", err, context.Cause(ctx))
	}
	return err
}

func (c *Collector) run(ctx context.Context, res *Result, progress func(string)) (err error) {
	if c.Live != nil {
		release, err := c.enterReadOnly(ctx, res, progress)
		defer release()
		if err != nil {
			return err
		}
	}
	inv, candidates, err := c.selectEligible(ctx, progress)
	if err != nil {
		return err
	}
	defer func() {
		// A stale cache would let clients mount or skip blobs that are
		// gone: failing to drop it fails the run, loudly.
		if c.Live != nil {
			if rErr := c.Live.ResetCaches(); rErr != nil {
				err = errors.Join(err, fmt.Errorf("resetting the registry caches after deletion (restart dvcr serve): %w", rErr))
			}
		}
	}()
	progress(fmt.Sprintf("deleting %d repositories; mark and sweep: deleting untagged manifests and unreferenced blobs", len(candidates)))
	removal, report := c.removal(res, candidates, progress)
	stats, err := MarkAndSweep(ctx, c.Driver, SweepOptions{
		GracePeriod:    c.Settings.GC.GracePeriod,
		Now:            c.Now,
		DeleteUntagged: true,
		Progress:       progress,
		Repositories:   keptRepositories(inv, candidates),
		Removal:        removal,
	})
	report()
	res.Sweep = &stats
	res.Freed = stats.FreedBytes
	res.Warnings = append(res.Warnings, stats.Errors...)
	return err
}

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

// enterReadOnly switches the registry read-only and waits for the writes in
// flight. Writes still running after drainTimeout are tolerated only when
// the grace period protects what they write.
func (c *Collector) enterReadOnly(ctx context.Context, res *Result, progress func(string)) (func(), error) {
	progress(fmt.Sprintf("switching the registry to read-only, waiting up to %s for writes in flight", c.Settings.GC.DrainTimeout))
	entered := c.now()
	hold, err := c.Live.Gate().Enter(ctx, "garbage collection in progress", c.Settings.GC.DrainTimeout)
	release := func() {
		hold.Release()
		res.ReadOnlySeconds = c.now().Sub(entered).Seconds()
		progress("registry is read-write again")
	}
	switch {
	case err == nil:
	case errors.Is(err, registry.ErrDrainTimeout) && c.Settings.GC.GracePeriod > 0 && ctx.Err() == nil:
		res.Warnings = append(res.Warnings, err.Error()+"; going on: dvcr.gc.gracePeriod protects what they write")
	default:
		return release, fmt.Errorf("entering read-only mode: %w", err)
	}
	return release, nil
}

// selectEligible lists storage then the cluster and picks the eligible repositories.
func (c *Collector) selectEligible(ctx context.Context, progress func(string)) (*storage.Inventory, []Candidate, error) {
	progress("listing repositories in storage")
	inv, err := storage.ListRepositories(ctx, c.Driver)
	if err != nil {
		return nil, nil, err
	}
	progress(fmt.Sprintf("found %d cvi, %d vi, %d vd repositories; listing resources in the cluster",
		inv.Count(naming.KindCVI), inv.Count(naming.KindVI), inv.Count(naming.KindVD)))
	lister, err := c.NewLister()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrClusterList, err)
	}
	live, err := lister.List(ctx)
	if err != nil {
		return nil, nil, err
	}
	return inv, Eligible(inv, live, c.Settings.RegistryHost), nil
}

// removal deletes the candidates, except those modified within the grace
// period. report, called once the removal has ended, fills res.Deleted and
// res.Skipped in the candidates' order (by path) whatever order the workers
// finished in.
func (c *Collector) removal(res *Result, candidates []Candidate, progress func(string)) (*Removal, func()) {
	const (
		kept = iota + 1
		deleted
	)
	grace := c.Settings.GC.GracePeriod
	cutoff := c.now().Add(-grace)
	outcome := make([]int, len(candidates))
	counter := newPhaseProgress(progress, "repositories", "done", len(candidates))
	removal := &Removal{
		Paths:       make([]string, len(candidates)),
		Concurrency: removeConcurrency,
		Remove: func(ctx context.Context, i int) (bool, error) {
			defer counter.add(1)
			cand := candidates[i]
			if grace > 0 {
				modified, err := storage.LastModified(ctx, c.Driver, cand.Path)
				if err != nil {
					return false, fmt.Errorf("checking %s: %w", cand.Path, err)
				}
				if modified.After(cutoff) {
					outcome[i] = kept
					return false, nil
				}
			}
			if err := storage.RemoveRepository(ctx, c.Driver, cand.Path); err != nil && !errors.Is(err, storage.ErrRepositoryNotFound) {
				return false, err
			}
			outcome[i] = deleted
			return true, nil
		},
	}
	for i, cand := range candidates {
		removal.Paths[i] = cand.Path
	}
	report := func() {
		for i, cand := range candidates {
			switch outcome[i] {
			case deleted:
				res.Deleted = append(res.Deleted, eligibleImage(cand))
			case kept:
				res.Skipped = append(res.Skipped, eligibleImage(cand))
				progress(fmt.Sprintf("kept %s: modified within dvcr.gc.gracePeriod (%s)", cand.Path, grace))
			}
		}
		progress(fmt.Sprintf("repositories: %d deleted, %d kept within the grace period", len(res.Deleted), len(res.Skipped)))
	}
	return removal, report
}

// removeConcurrency is how many repositories are removed at once: removal
// is a handful of metadata operations each, bound by storage latency.
const removeConcurrency = 8

// finish fills the outcome, the space figures and the message.
func (c *Collector) finish(res *Result, runErr error) {
	res.FinishedAt = c.now()
	if c.Usage != nil {
		if u, err := c.Usage(); err == nil {
			res.Total, res.Available = u.Total, u.Available
		}
	}
	res.Result = ResultSuccess
	res.Message = FreedMessage(res.Freed, res.Available, res.Total)
	if runErr != nil {
		res.Result = ResultFail
		res.Error = runErr.Error()
		res.Message = "Garbage collection failed: " + runErr.Error() + ". " + res.Message
	}
}

// serialized wraps progress so that its calls never overlap: the removal
// and the sweep report from their own goroutines.
func serialized(progress func(string)) func(string) {
	if progress == nil {
		return func(string) {}
	}
	var mu sync.Mutex
	return func(line string) {
		mu.Lock()
		defer mu.Unlock()
		progress(line)
	}
}

// driverOwner is a live registry that can hand over its storage driver.
type driverOwner interface {
	Driver() storagedriver.StorageDriver
}

// collectorDriver is the live registry's own driver when it has one (an
// inmemory store exists once per driver), else a new one.
func collectorDriver(ctx context.Context, cfg *config.Config, live LiveRegistry) (storagedriver.StorageDriver, error) {
	if owner, ok := live.(driverOwner); ok && owner.Driver() != nil {
		return owner.Driver(), nil
	}
	return storage.OpenDriver(ctx, cfg)
}

// NewCollector builds a collector for the configured storage. live is the
// registry of this process, or nil to work offline on storage; restConfig
// is called at each run to reach the cluster.
func NewCollector(ctx context.Context, cfg *config.Config, live LiveRegistry, restConfig func() (*rest.Config, error)) (*Collector, error) {
	driver, err := collectorDriver(ctx, cfg, live)
	if err != nil {
		return nil, err
	}
	return &Collector{
		Driver: driver,
		NewLister: func() (Lister, error) {
			rc, err := restConfig()
			if err != nil {
				return nil, err
			}
			return NewClusterLister(rc)
		},
		Live:     live,
		Settings: cfg.DVCR,
		Usage:    func() (storage.Usage, error) { return storage.VolumeUsage(cfg) },
		Store:    NewResultStore(driver),
	}, nil
}
