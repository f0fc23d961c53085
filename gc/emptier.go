// The emptier: deletes the trash's entries, from the moment they are
// detached, slowly while the registry is read-only and at full speed once it
// is writable again.

package gc

import (
	"context"
	"fmt"
	"path"
	"sync"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
)

// windowEmptyConcurrency is how many workers delete trash entries while the
// window is still open: a few, so that freeing overlaps the window, not so
// many that they slow down the window's own work on the same disk.
const windowEmptyConcurrency = 2

// emptier deletes trash entries as they are queued. Everything queued was
// condemned inside a window and is reachable by no registry request, so
// deleting it at any time is safe.
type emptier struct {
	driver storagedriver.StorageDriver
	own    *trash // sizes of this run's blobs; nil when freeing leftovers only
	fault  func(string)

	mu     sync.Mutex
	wake   *sync.Cond
	queue  []string
	limit  int // workers allowed to delete now
	closed bool
	res    emptyResult
	done   sync.WaitGroup
}

// emptyResult is what emptying the trash did.
type emptyResult struct {
	Entries int
	Freed   int64 // bytes of blob data deleted
	Errors  []string
}

func newEmptier(driver storagedriver.StorageDriver, own *trash, fault func(string)) *emptier {
	e := &emptier{driver: driver, own: own, fault: fault, limit: windowEmptyConcurrency}
	e.wake = sync.NewCond(&e.mu)
	return e
}

// start runs the workers; windowed is false when no window is open (all
// workers at once).
func (e *emptier) start(ctx context.Context, windowed bool) {
	e.mu.Lock()
	if !windowed {
		e.limit = emptyConcurrency
	}
	e.mu.Unlock()
	for w := range emptyConcurrency {
		e.done.Go(func() { e.work(ctx, w) })
	}
	// A cancelled run stops the workers; what is left in the trash goes
	// at the next run or start.
	stop := context.AfterFunc(ctx, func() {
		e.mu.Lock()
		e.closed = true
		e.queue = nil
		e.mu.Unlock()
		e.wake.Broadcast()
	})
	go func() { e.done.Wait(); stop() }()
}

// add queues an entry detached into the trash.
func (e *emptier) add(entry string) {
	e.mu.Lock()
	e.queue = append(e.queue, entry)
	e.mu.Unlock()
	e.wake.Signal()
}

// windowClosed lets every worker delete.
func (e *emptier) windowClosed() {
	e.mu.Lock()
	e.limit = emptyConcurrency
	e.mu.Unlock()
	e.wake.Broadcast()
}

// finish queues what interrupted runs left, waits until everything queued
// is deleted, and deletes the emptied run directories.
func (e *emptier) finish(ctx context.Context, progress func(string)) emptyResult {
	runs, leftovers := listTrash(ctx, e.driver, e.own)
	e.mu.Lock()
	e.queue = append(e.queue, leftovers.entries...)
	e.res.Errors = append(e.res.Errors, leftovers.errors...)
	e.closed = true
	e.mu.Unlock()
	if e.fault != nil {
		e.fault(faultDelete) // the freeing after the window has begun
	}
	e.windowClosed()
	stopReports := e.report(progress)
	e.done.Wait()
	stopReports()
	e.mu.Lock()
	res := e.res
	e.mu.Unlock()
	if ctx.Err() == nil && len(res.Errors) == 0 {
		for _, dir := range runs {
			if err := e.driver.Delete(ctx, dir); err != nil && !sweepNotFound(err) {
				res.Errors = append(res.Errors, "deleting "+dir+": "+err.Error())
			}
		}
	}
	return res
}

// abandon stops the workers once the queue is empty; after finish it
// changes nothing. What is left in the trash goes at the next run or start.
func (e *emptier) abandon() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.wake.Broadcast()
}

// report prints the progress of the freeing every second until stopped.
func (e *emptier) report(progress func(string)) func() {
	stop := make(chan struct{})
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				e.mu.Lock()
				done, left := e.res.Entries, len(e.queue)
				e.mu.Unlock()
				progress(fmt.Sprintf("freeing space: %d/%d entries deleted", done, done+left))
			}
		}
	}()
	return func() { close(stop) }
}

func (e *emptier) work(ctx context.Context, w int) {
	for {
		entry, ok := e.next(w)
		if !ok {
			return
		}
		size := entrySize(ctx, e.driver, e.own, entry)
		err := e.driver.Delete(ctx, entry)
		e.mu.Lock()
		e.res.Entries++
		afterWindow := e.limit == emptyConcurrency
		switch {
		case err == nil:
			e.res.Freed += size
		case !sweepNotFound(err):
			e.res.Errors = append(e.res.Errors, "deleting "+entry+": "+err.Error())
		}
		e.mu.Unlock()
		if e.fault != nil && afterWindow {
			e.fault(faultDelete)
		}
	}
}

// next waits for an entry worker w may delete; false when there is none
// left and none will come.
func (e *emptier) next(w int) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for {
		if w < e.limit && len(e.queue) > 0 {
			entry := e.queue[len(e.queue)-1]
			e.queue = e.queue[:len(e.queue)-1]
			return entry, true
		}
		if e.closed && len(e.queue) == 0 {
			return "", false
		}
		e.wake.Wait()
	}
}

// trashListing is what an earlier run left in the trash.
type trashListing struct {
	entries []string
	errors  []string
}

// listTrash lists every run directory of the trash, and the entries of
// those that are not own's (own's entries are queued as they are detached).
func listTrash(ctx context.Context, driver storagedriver.StorageDriver, own *trash) (runs []string, left trashListing) {
	runs, err := driver.List(ctx, trashRoot)
	if err != nil {
		if !sweepNotFound(err) {
			left.errors = append(left.errors, "listing the trash: "+err.Error())
		}
		return nil, left
	}
	for _, run := range runs {
		if own != nil && run == own.dir {
			continue
		}
		shards, err := driver.List(ctx, run)
		if err != nil && !sweepNotFound(err) {
			left.errors = append(left.errors, "listing the trash: "+err.Error())
			continue
		}
		for _, shard := range shards {
			entries, err := driver.List(ctx, shard)
			if err != nil && !sweepNotFound(err) {
				left.errors = append(left.errors, "listing the trash: "+err.Error())
				continue
			}
			left.entries = append(left.entries, entries...)
		}
	}
	return runs, left
}

// entrySize is the blob bytes an entry holds: recorded when it was moved,
// or, for an earlier run's entries, found by Stat.
func entrySize(ctx context.Context, driver storagedriver.StorageDriver, own *trash, entry string) int64 {
	if own != nil && path.Dir(path.Dir(entry)) == own.dir {
		own.mu.Lock()
		defer own.mu.Unlock()
		return own.sizes[entry]
	}
	fi, err := driver.Stat(ctx, path.Join(entry, "data"))
	if err != nil || fi.IsDir() {
		return 0
	}
	return fi.Size()
}
