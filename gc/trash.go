// The trash: where a run moves what it deletes while the registry is
// read-only, to delete it once the registry is writable again.

package gc

import (
	"context"
	"path"
	"strconv"
	"sync"
	"sync/atomic"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
)

// Where the collector keeps its state in the registry's storage, outside
// distribution's tree (/docker/registry/v2), so that no registry request
// can ever reach it.
const (
	stateRoot   = "/dvcr/gc"
	trashRoot   = stateRoot + "/trash"   // <run>/<n>: the entries a run detached
	journalRoot = stateRoot + "/journal" // <run>.json: the repositories a run removes
	markerPath  = stateRoot + "/running.json"
)

// emptyConcurrency is how many trash entries are deleted at once: deleting
// is bound by the filesystem freeing blocks, and the deletion floor of the
// benchmark uses as many.
const emptyConcurrency = 16

// detachable reports whether the driver moves a directory in one cheap
// operation (a rename), so that detaching costs no freeing of space. On
// object stores a move is a copy: there the run deletes in place.
func detachable(d storagedriver.StorageDriver) bool {
	switch d.Name() {
	case "filesystem", "inmemory":
		return true
	}
	return false
}

// trash is the trash of one run. Entries are numbered, so that moving never
// collides and the trash is one flat directory per run.
type trash struct {
	driver storagedriver.StorageDriver
	dir    string
	seq    atomic.Int64
	fault  func(string)

	mu    sync.Mutex
	sizes map[string]int64 // blob bytes by entry, to count what is freed
}

func newTrash(driver storagedriver.StorageDriver, run string, fault func(string)) *trash {
	return &trash{driver: driver, dir: path.Join(trashRoot, run), fault: fault, sizes: map[string]int64{}}
}

// discard moves p into the trash; size is the blob bytes it holds (0 for
// links and repositories, whose space is not counted as freed).
func (t *trash) discard(ctx context.Context, p string, size int64) error {
	entry := path.Join(t.dir, strconv.FormatInt(t.seq.Add(1), 10))
	if err := t.driver.Move(ctx, p, entry); err != nil {
		return err
	}
	if size > 0 {
		t.mu.Lock()
		t.sizes[entry] = size
		t.mu.Unlock()
	}
	return nil
}

// emptyResult is what emptying the trash did.
type emptyResult struct {
	Entries int
	Freed   int64 // bytes of blob data deleted
	Errors  []string
}

// emptyTrash deletes every run's trash: this run's, and what an earlier run
// that was interrupted left. Everything in the trash was condemned inside a
// read-only window, so deleting it is safe at any time. Blob bytes are those
// recorded when moved, or, for an earlier run's entries, found by Stat.
func emptyTrash(ctx context.Context, driver storagedriver.StorageDriver, own *trash, progress func(string), fault func(string)) emptyResult {
	var res emptyResult
	runs, err := driver.List(ctx, trashRoot)
	if err != nil {
		if !sweepNotFound(err) {
			res.Errors = append(res.Errors, "listing the trash: "+err.Error())
		}
		return res
	}
	var entries []string
	for _, run := range runs {
		list, err := driver.List(ctx, run)
		if err != nil && !sweepNotFound(err) {
			res.Errors = append(res.Errors, "listing the trash: "+err.Error())
			continue
		}
		entries = append(entries, list...)
	}
	res.Entries = len(entries)
	prog := newPhaseProgress(progress, "freeing space", "entries deleted", len(entries))
	var mu sync.Mutex
	_ = forEachParallel(ctx, emptyConcurrency, len(entries), func(ctx context.Context, i int) error {
		size := entrySize(ctx, driver, own, entries[i])
		err := driver.Delete(ctx, entries[i])
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			res.Freed += size
		case !sweepNotFound(err):
			res.Errors = append(res.Errors, "deleting "+entries[i]+": "+err.Error())
		}
		prog.add(1)
		if fault != nil {
			fault(faultDelete)
		}
		return nil
	})
	if ctx.Err() == nil && len(res.Errors) == 0 {
		for _, run := range runs {
			if err := driver.Delete(ctx, run); err != nil && !sweepNotFound(err) {
				res.Errors = append(res.Errors, "deleting "+run+": "+err.Error())
			}
		}
	}
	return res
}

// entrySize is the blob bytes an entry holds.
func entrySize(ctx context.Context, driver storagedriver.StorageDriver, own *trash, entry string) int64 {
	if own != nil && path.Dir(entry) == own.dir {
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
