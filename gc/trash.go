// The trash: where a run moves what it deletes while the registry is
// read-only, to delete it once the registry is writable again.

package gc

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
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
// object stores a move is a copy, and distribution's inmemory driver leaves
// the paths of a moved directory's children stale: there the run deletes in
// place.
func detachable(d storagedriver.StorageDriver) bool {
	return d.Name() == "filesystem"
}

// trashShards spreads a run's entries over directories: renames into one
// directory serialize on its lock (measured here: 8 workers moving 14,000
// blob directories take 210 ms into one directory, 133 ms into 16).
const trashShards = 64

// trash is the trash of one run: <run>/<shard>/<n>. Entries are numbered,
// so that moving never collides.
type trash struct {
	driver storagedriver.StorageDriver
	dir    string
	seq    atomic.Int64
	// fsRoot, when set, is the filesystem driver's root directory: moves
	// are then one rename(2) each, without the driver's Stat of the source
	// and of the destination's directory (two path walks per entry, inside
	// the window).
	fsRoot string
	shards [trashShards]sync.Once
	// detached, when not nil, is told of each entry once it is in the trash.
	detached func(entry string)

	mu    sync.Mutex
	sizes map[string]int64 // blob bytes by entry, to count what is freed
}

func newTrash(driver storagedriver.StorageDriver, run string) *trash {
	return &trash{driver: driver, dir: path.Join(trashRoot, run), sizes: map[string]int64{}}
}

// discard moves p into the trash; size is the blob bytes it holds (0 for
// links and repositories, whose space is not counted as freed).
func (t *trash) discard(ctx context.Context, p string, size int64) error {
	n := t.seq.Add(1)
	entry := path.Join(t.dir, strconv.FormatInt(n%trashShards, 10), strconv.FormatInt(n, 10))
	if err := t.move(ctx, p, entry, int(n%trashShards)); err != nil {
		return err
	}
	if size > 0 {
		t.mu.Lock()
		t.sizes[entry] = size
		t.mu.Unlock()
	}
	if t.detached != nil {
		t.detached(entry)
	}
	return nil
}

func (t *trash) move(ctx context.Context, p, entry string, shard int) error {
	if t.fsRoot == "" {
		return t.driver.Move(ctx, p, entry)
	}
	var mkErr error
	t.shards[shard].Do(func() { mkErr = os.MkdirAll(filepath.Join(t.fsRoot, path.Dir(entry)), 0o777) })
	if mkErr != nil {
		return mkErr
	}
	err := os.Rename(filepath.Join(t.fsRoot, p), filepath.Join(t.fsRoot, entry))
	if errors.Is(err, fs.ErrNotExist) {
		return storagedriver.PathNotFoundError{Path: p, DriverName: "filesystem"}
	}
	return err
}
