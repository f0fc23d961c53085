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
	"github.com/dvcr/dvcr/registry"
	"github.com/dvcr/dvcr/storage"
	"github.com/dvcr/dvcr/units"
)

// Collector runs garbage collection: read-only window, inventories,
// selection, repository removal, mark and sweep, result record. Live,
// Replicas, Objects and the driver decide how a run deletes, once at its
// start (mode.go).
type Collector struct {
	Driver storagedriver.StorageDriver
	// NewLister connects to the cluster; called at each run so that a
	// rotated service account token or a late API server is picked up.
	NewLister func() (Lister, error)
	// Live is the registry in this process; nil when working offline on
	// storage with no dvcr serve running.
	Live *Live
	// Replicas opens the window on every replica sharing the storage
	// (dvcr.cluster); nil for a single registry.
	Replicas Replicas
	Settings config.DVCR
	// Usage reports the volume's space (on S3, the bytes used); nil or an
	// error leave the record's figures 0.
	Usage   func(context.Context) (storage.Usage, error)
	Store   *ResultStore
	Metrics *Metrics
	Now     func() time.Time
	// Hooks are what a test arms (fault.go); the zero value arms none.
	Hooks TestHooks
	// Objects deletes blob files in batches on S3; nil for other drivers.
	Objects *storage.ObjectDeleter
	// FilesystemRoot is the filesystem driver's root directory, for moves
	// into the trash by rename(2); empty uses the driver's Move.
	FilesystemRoot string

	running atomic.Bool
	trashMu sync.Mutex // held while the trash is emptied
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
	c.releaseReserve()
	defer c.restoreReserve(res)
	runErr := c.start(ctx, res, progress)
	if runErr == nil {
		runErr = c.runGuarded(ctx, res, progress)
	}
	// The record must be written even when the run's context has ended.
	recordCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	c.finish(recordCtx, res, runErr)
	c.setPhase(recordCtx, res, phaseRecording)
	if c.Store != nil {
		if err := c.Store.Add(recordCtx, *res); err != nil {
			res.Warnings = append(res.Warnings, err.Error())
		}
	}
	if err := c.Driver.Delete(recordCtx, markerPath); err != nil && !sweepNotFound(err) {
		res.Warnings = append(res.Warnings, "deleting the marker of the run: "+err.Error())
	}
	if c.Metrics != nil {
		c.Metrics.observe(res)
	}
	progress(res.Message)
	return res, runErr
}

// start finishes what an interrupted run left when working offline (a
// server does it when it starts), then marks this run as in progress.
func (c *Collector) start(ctx context.Context, res *Result, progress func(string)) error {
	if c.Live == nil {
		if err := c.recover(ctx, progress); err != nil {
			return err
		}
	}
	return c.tolerateFull(res, writeMarker(ctx, c.Driver, runMarker{Run: runID(res.StartedAt), Trigger: res.Trigger, StartedAt: res.StartedAt, Phase: phaseStarting}))
}

// setPhase updates the marker: the phase an interrupted run is reported in.
func (c *Collector) setPhase(ctx context.Context, res *Result, phase string) {
	m := runMarker{Run: runID(res.StartedAt), Trigger: res.Trigger, StartedAt: res.StartedAt, Phase: phase}
	if err := writeMarker(ctx, c.Driver, m); err != nil {
		res.Warnings = append(res.Warnings, err.Error())
	}
}

func (c *Collector) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Collector) fault(point string) {
	if c.Hooks.Fault != nil {
		c.Hooks.Fault(point)
	}
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

// run decides and detaches inside the read-only window, then frees the
// space with the registry writable again. What the window detached is
// freed even when the window failed: all of it was condemned by then.
//
// Entries are deleted from the moment they are in the trash: by a few
// workers while the window is open, by all once it has closed.
func (c *Collector) run(ctx context.Context, res *Result, progress func(string)) error {
	c.trashMu.Lock()
	defer c.trashMu.Unlock()
	m := c.deletionMode()
	var tr *trash
	if m.storage == storeTrash {
		tr = newTrash(c.Driver, runID(res.StartedAt))
		tr.fsRoot = c.FilesystemRoot
	}
	em := newEmptier(c.Driver, tr, c.Hooks.Fault)
	if tr != nil {
		tr.detached = em.add
	}
	em.start(ctx, true)
	defer em.abandon() // a panic must not leave the workers waiting
	c.setPhase(ctx, res, phaseWindow)
	if m.condemned != nil {
		return c.runDeferred(ctx, res, progress, m, tr, em)
	}
	err := c.window(ctx, res, progress, m, tr)
	// The marker names the freeing before the freeing speeds up.
	c.setPhase(ctx, res, phaseFreeing)
	em.windowClosed()
	c.free(ctx, res, progress, tr, em, 0)
	return err
}

// window is the read-only part of a run: select, remove the repositories
// and mark and sweep, all deletions being moves into the trash when the
// driver can move cheaply.
func (c *Collector) window(ctx context.Context, res *Result, progress func(string), m deletionMode, tr *trash) (err error) {
	progress("listing blobs in storage")
	blobs, err := ListBlobs(ctx, c.Driver, m.storage.concurrency())
	if err != nil {
		return err
	}
	ctx, leave, err := c.enterWindow(ctx, res, progress)
	defer leave()
	if err != nil {
		return err
	}
	sel, err := c.selectEligible(ctx, progress)
	if err != nil {
		return err
	}
	defer func() {
		if rErr := c.resetCaches(); rErr != nil {
			err = errors.Join(err, rErr)
		}
	}()
	return c.removeAndSweep(ctx, res, progress, m, tr, sel, blobs)
}

// enterWindow switches the live registry read-only, then opens the window
// on every replica; it returns the context the run goes on with (see
// openReplicas) and leave, which closes both in the reverse order: call it
// even on error.
func (c *Collector) enterWindow(ctx context.Context, res *Result, progress func(string)) (context.Context, func(), error) {
	release := func() {}
	if c.Live != nil {
		var err error
		release, err = c.enterReadOnly(ctx, res, progress)
		if err != nil {
			return ctx, release, err
		}
		c.fault(faultReadOnly)
	}
	ctx, closeReplicas, err := c.openReplicas(ctx, res, progress)
	leave := func() {
		closeReplicas()
		release()
	}
	return ctx, leave, err
}

// removeAndSweep removes the selected candidates alongside the mark and
// sweep of what stays, inside the window, under a journal of the removal.
func (c *Collector) removeAndSweep(ctx context.Context, res *Result, progress func(string), m deletionMode, tr *trash, sel *selection, blobs *BlobList) error {
	candidates := sel.candidates
	if err := c.tolerateFull(res, writeJournal(ctx, c.Driver, runID(res.StartedAt), candidatePaths(candidates))); err != nil {
		return err
	}
	verb := "deleting"
	if m.storage == storeTrash {
		verb = "detaching"
	}
	progress(fmt.Sprintf("%s %d repositories; mark and sweep: %s untagged manifests and unreferenced blobs", verb, len(candidates), verb))
	removal, report := c.removal(res, m, candidates, tr, progress)
	opts := c.sweepOptions(progress, m.storage, blobs)
	opts.Repositories = sel.kept
	opts.Removal = removal
	switch m.storage {
	case storeTrash:
		opts.Discard = tr.discard
	case storeObjects:
		opts.DeleteFiles = c.Objects.DeleteFiles
	}
	stats, err := MarkAndSweep(ctx, c.Driver, opts)
	report()
	res.Sweep = &stats
	res.Freed = stats.FreedBytes
	res.Warnings = append(res.Warnings, stats.Errors...)
	if err == nil {
		// Every removal ended: the journal has nothing left to finish.
		c.deleteJournal(ctx, res)
	}
	return err
}

// sweepOptions are the options of every run's mark and sweep; the window
// run adds what it removes and how its storage deletes.
func (c *Collector) sweepOptions(progress func(string), store storageKind, blobs *BlobList) SweepOptions {
	return SweepOptions{
		GracePeriod:    c.Settings.GC.GracePeriod,
		Now:            c.Now,
		DeleteUntagged: true,
		Progress:       progress,
		Fault:          c.Hooks.Fault,
		Blobs:          blobs,
		Concurrency:    store.concurrency(),
	}
}

// free empties the trash after the window: this run's detached entries
// and whatever an interrupted run left. With a trash, what is freed is what
// emptying deleted; without, the sweep's count stands.
func (c *Collector) free(ctx context.Context, res *Result, progress func(string), tr *trash, em *emptier, freedInPlace int64) {
	emptied := em.finish(ctx, progress)
	if tr != nil {
		res.Freed = 0
	}
	res.Freed += freedInPlace + emptied.Freed
	res.Warnings = append(res.Warnings, emptied.Errors...)
	if emptied.Entries > 0 {
		progress(fmt.Sprintf("freed %s: %d entries deleted", units.FormatBytes(uint64(res.Freed)), emptied.Entries))
	}
	freedAt := c.now()
	res.FreedAt = &freedAt
}

// resetCaches drops the live registry's caches after deleting (offline
// there are none). A stale cache would let clients mount or skip blobs
// that are gone: failing to drop it fails the run, loudly.
func (c *Collector) resetCaches() error {
	if c.Live == nil {
		return nil
	}
	if err := c.Live.ResetCaches(); err != nil {
		return fmt.Errorf("resetting the registry caches after deletion (restart dvcr serve): %w", err)
	}
	return nil
}

// enterReadOnly switches the registry read-only and waits for the writes in
// flight. Writes still running after drainTimeout are tolerated only when
// the grace period protects what they write.
func (c *Collector) enterReadOnly(ctx context.Context, res *Result, progress func(string)) (func(), error) {
	progress(fmt.Sprintf("switching the registry to read-only, waiting up to %s for writes in flight", c.Settings.GC.DrainTimeout))
	entered := c.now()
	hold, err := c.Live.Gate.Enter(ctx, "garbage collection in progress", c.Settings.GC.DrainTimeout)
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

// finish fills the outcome, the space figures and the message.
func (c *Collector) finish(ctx context.Context, res *Result, runErr error) {
	res.FinishedAt = c.now()
	c.fillUsage(ctx, res)
	res.Result = ResultSuccess
	res.Message = FreedMessage(res)
	if runErr != nil {
		res.Result = ResultFail
		res.Error = runErr.Error()
		res.Message = "Garbage collection failed: " + runErr.Error() + ". " + res.Message
	}
}

// collectorDriver is the live registry's own driver when it has one (an
// inmemory store exists once per driver), else a new one.
func collectorDriver(ctx context.Context, cfg *config.Config, live *Live) (storagedriver.StorageDriver, error) {
	if live != nil && live.Driver != nil {
		return live.Driver, nil
	}
	return storage.OpenDriver(ctx, cfg)
}

// NewCollector builds a collector for the configured storage. live is the
// registry of this process, or nil to work offline on storage; restConfig
// is called at each run to reach the cluster. The caller sets Hooks, if a
// test arms any.
func NewCollector(ctx context.Context, cfg *config.Config, live *Live, restConfig func() (*rest.Config, error)) (*Collector, error) {
	driver, err := collectorDriver(ctx, cfg, live)
	if err != nil {
		return nil, err
	}
	fsRoot, _ := storage.FilesystemRoot(cfg)
	if live != nil {
		// Room for the first run on a volume that fills up (reserve.go).
		_ = EnsureReserve(fsRoot)
	}
	objects, _, err := storage.NewObjectDeleter(driver)
	if err != nil {
		return nil, err
	}
	c := &Collector{
		Driver:  driver,
		Objects: objects,
		// The driver of a live registry is the one the configuration names.
		FilesystemRoot: fsRoot,
		NewLister: func() (Lister, error) {
			rc, err := restConfig()
			if err != nil {
				return nil, err
			}
			return NewClusterLister(rc)
		},
		Live:     live,
		Settings: cfg.DVCR,
		Usage: func(ctx context.Context) (storage.Usage, error) {
			return storage.StoreUsage(ctx, cfg, driver)
		},
	}
	c.Store = newResultStore(driver, c.fault) // the hooks as set when a record is written
	return c, nil
}
