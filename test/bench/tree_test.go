//go:build bench

package bench

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// treeWorkers is how many goroutines copy or delete a tree: creating and
// deleting directory entries is bound by the filesystem, not the CPU, and
// a single tar or rm leaves most of its throughput unused.
const treeWorkers = 16

// tree is a directory tree: its directories and files relative to the root,
// directories parents first.
type tree struct {
	dirs  []string
	files []string
}

func readTree(t testing.TB, root string) *tree {
	t.Helper()
	tr := &tree{}
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if e.IsDir() {
			tr.dirs = append(tr.dirs, rel)
		} else {
			tr.files = append(tr.files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// byDepth groups paths by their number of elements, shallowest first.
func byDepth(paths []string) [][]string {
	groups := map[int][]string{}
	var depths []int
	for _, p := range paths {
		d := strings.Count(p, string(filepath.Separator))
		if _, ok := groups[d]; !ok {
			depths = append(depths, d)
		}
		groups[d] = append(groups[d], p)
	}
	sort.Ints(depths)
	out := make([][]string, len(depths))
	for i, d := range depths {
		out[i] = groups[d]
	}
	return out
}

// inParallel calls fn for each item on treeWorkers goroutines and returns
// the first error.
func inParallel(items []string, fn func(string) error) error {
	var (
		next  atomic.Int64
		first atomic.Pointer[error]
		wg    sync.WaitGroup
	)
	for range min(treeWorkers, len(items)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(items) || first.Load() != nil {
					return
				}
				if err := fn(items[i]); err != nil {
					first.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	wg.Wait()
	if err := first.Load(); err != nil {
		return *err
	}
	return nil
}

// copyTree copies src to dst with the same contents, modes and modification
// times, flushes it to disk and waits for the disk to be idle.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	tr := readTree(t, src)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, level := range byDepth(tr.dirs) {
		if err := inParallel(level, func(rel string) error { return os.Mkdir(filepath.Join(dst, rel), 0o755) }); err != nil {
			t.Fatal(err)
		}
	}
	err := inParallel(tr.files, func(rel string) error {
		from, to := filepath.Join(src, rel), filepath.Join(dst, rel)
		data, err := os.ReadFile(from)
		if err != nil {
			return err
		}
		fi, err := os.Lstat(from)
		if err != nil {
			return err
		}
		if err := os.WriteFile(to, data, fi.Mode().Perm()); err != nil {
			return err
		}
		return os.Chtimes(to, fi.ModTime(), fi.ModTime())
	})
	if err != nil {
		t.Fatal(err)
	}
	// Directory times last: creating their entries changed them.
	err = inParallel(tr.dirs, func(rel string) error {
		fi, err := os.Lstat(filepath.Join(src, rel))
		if err != nil {
			return err
		}
		return os.Chtimes(filepath.Join(dst, rel), fi.ModTime(), fi.ModTime())
	})
	if err != nil {
		t.Fatal(err)
	}
	syscall.Sync()
	waitDiskIdle(t, dst)
}

// removeTree deletes a tree with parallel unlinks (files, then directories
// deepest first), flushes and waits for the disk to be idle.
func removeTree(t testing.TB, root string) {
	t.Helper()
	if err := removeEntries(readTree(t, root), root); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	syscall.Sync()
	if waited := waitDiskIdle(t, filepath.Dir(root)); waited > 5*time.Second {
		t.Logf("waited %s for the disk to finish the writes and discards of deleting %s", waited.Round(time.Second), root)
	}
}

func removeEntries(tr *tree, root string) error {
	if err := inParallel(tr.files, func(rel string) error { return os.Remove(filepath.Join(root, rel)) }); err != nil {
		return err
	}
	levels := byDepth(tr.dirs)
	for i := len(levels) - 1; i >= 0; i-- {
		if err := inParallel(levels[i], func(rel string) error { return os.Remove(filepath.Join(root, rel)) }); err != nil {
			return err
		}
	}
	return nil
}

// deleteFloor deletes from a copy of the dataset exactly the entries the
// result tree no longer has, with parallel unlinks and nothing read: the
// least time this filesystem needs to delete what a collector deleted.
func deleteFloor(t testing.TB, copyRoot string, result *tree) time.Duration {
	t.Helper()
	keep := make(map[string]bool, len(result.dirs)+len(result.files))
	for _, p := range append(append([]string{}, result.dirs...), result.files...) {
		keep[p] = true
	}
	all := readTree(t, copyRoot)
	gone := &tree{}
	for _, d := range all.dirs {
		if !keep[d] {
			gone.dirs = append(gone.dirs, d)
		}
	}
	for _, f := range all.files {
		if !keep[f] {
			gone.files = append(gone.files, f)
		}
	}
	start := time.Now()
	if err := removeEntries(gone, copyRoot); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

// waitDiskIdle waits, up to a minute, until the block device holding dir has
// finished its writes and discards: deleting a tree on a filesystem mounted
// with discard queues work on the device that would otherwise land in the
// next measured run. It returns how long it waited.
func waitDiskIdle(t testing.TB, dir string) time.Duration {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	statFile := fmt.Sprintf("/sys/dev/block/%d:%d/stat", unix.Major(st.Dev), unix.Minor(st.Dev))
	sample := func() string {
		data, err := os.ReadFile(statFile)
		if err != nil {
			return ""
		}
		f := strings.Fields(string(data))
		if len(f) < 15 {
			return ""
		}
		// writes (4–7), in flight (8), discards (11–14); reads are left
		// out: other processes read all the time.
		return strings.Join(append(f[4:9], f[11:15]...), " ")
	}
	start := time.Now()
	prev := sample()
	if prev == "" {
		return 0 // not a block device (tmpfs, overlay): nothing to wait for
	}
	for stable := 0; stable < 2 && time.Since(start) < time.Minute; {
		time.Sleep(500 * time.Millisecond)
		cur := sample()
		if cur == prev {
			stable++
		} else {
			stable = 0
		}
		prev = cur
	}
	return time.Since(start)
}
