// Room for a run on a full volume: what a run writes before it has freed
// anything (its marker, the journal, the trash's directories) and its
// record need a little space, which a volume filled by imports does not
// have. A reserve file holds that space between runs; a run deletes it
// first and recreates it when done.

package gc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/dvcr/dvcr/storage"
)

// ReserveSize is the space the reserve file holds. A run on a volume with
// no byte free writes its marker, journal, trash directories and record
// (written aside, then moved over the previous one) before and after it
// frees anything: measured on tmpfs (TestRunOnFullVolume) at 8 KiB — the
// marker written aside then renamed, the journal — where 4 KiB is not
// enough; a filesystem with block-sized directories (ext4: the journal's
// and the trash's directories) needs a few blocks more. 1 MiB leaves ample
// room for those and for larger blocks.
const ReserveSize = 1 << 20

// reserveSize is ReserveSize; tests measuring what a run needs change it.
var reserveSize int64 = ReserveSize

// reservePath is the reserve file under the storage root (outside
// distribution's tree, next to the run's other state).
const reservePath = stateRoot + "/reserve"

// reserveFile is the reserve of the filesystem root ("" when the storage
// is not a filesystem: object storage never fills up).
func reserveFile(fsRoot string) string {
	if fsRoot == "" {
		return ""
	}
	return filepath.Join(fsRoot, filepath.FromSlash(reservePath))
}

// EnsureReserve creates the reserve file of the filesystem root if it is
// missing or short, allocating its blocks. On a volume already full it
// fails; the next run tries again.
func EnsureReserve(fsRoot string) error {
	file := reserveFile(fsRoot)
	if file == "" || reserveSize <= 0 {
		return nil
	}
	if st, err := os.Stat(file); err == nil && st.Size() >= reserveSize {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return fmt.Errorf("creating the garbage collector's reserve: %w", err)
	}
	if err := allocate(file, reserveSize); err != nil {
		_ = os.Remove(file) // a partial reserve would only hide free space
		return fmt.Errorf("creating the garbage collector's reserve %s: %w", file, err)
	}
	return nil
}

// allocate writes a file of size bytes whose blocks are allocated
// (fallocate where the filesystem has it, else zeros written out).
func allocate(file string, size int64) error {
	f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	err = unix.Fallocate(int(f.Fd()), 0, 0, size)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		_, err = io.CopyN(f, zeroReader{}, size)
	}
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// releaseReserve deletes the reserve so that the run's first writes fit.
func (c *Collector) releaseReserve() {
	if file := reserveFile(c.FilesystemRoot); file != "" {
		_ = os.Remove(file)
	}
}

// restoreReserve recreates the reserve after a run; on a volume the run
// could not free it is a warning, and the next run tries again.
func (c *Collector) restoreReserve(res *Result) {
	if err := EnsureReserve(c.FilesystemRoot); err != nil {
		res.Warnings = append(res.Warnings, err.Error())
	}
}

// tolerateFull lets a run go on when one of its own records (the marker of
// the run, the journal) cannot be written for lack of space: deleting is
// what frees the space, and the record only serves a crash's recovery.
func (c *Collector) tolerateFull(res *Result, err error) error {
	if err != nil && storage.IsNoSpace(err) {
		res.Warnings = append(res.Warnings, err.Error()+"; going on without it: the volume is full")
		return nil
	}
	return err
}
