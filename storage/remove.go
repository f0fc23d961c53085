package storage

import (
	"context"
	"fmt"
	"path"
	"strings"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
)

// RemoveRepository deletes a repository: its tags, manifest links, layer
// links and unfinished uploads. Blobs stay until the next garbage collection
// decides whether another repository still references them.
//
// Only the repository's own "_" directories are deleted, never the whole
// directory: a legacy vi/<name> repository shares its directory with the
// namespace <name>'s VirtualImages, and any repository may have nested ones.
func RemoveRepository(ctx context.Context, driver storagedriver.StorageDriver, repoPath string) error {
	return DiscardRepository(ctx, driver, repoPath, driver.Delete)
}

// Discard takes a path out of the registry's tree: deletes it, or moves it
// where it is deleted later (the garbage collector's trash).
type Discard func(ctx context.Context, path string) error

// DiscardRepository is RemoveRepository with each directory going through
// discard instead of being deleted: the whole repository directory in one
// call when nothing is nested in it, else _manifests first (once it is gone
// the repository no longer exists for the registry), then the others.
func DiscardRepository(ctx context.Context, driver storagedriver.StorageDriver, repoPath string, discard Discard) error {
	dir := RepositoryDir(repoPath)
	children, err := driver.List(ctx, dir)
	if err != nil {
		if isNotFound(err) {
			return fmt.Errorf("%w: %s", ErrRepositoryNotFound, repoPath)
		}
		return fmt.Errorf("removing %s: %w", repoPath, err)
	}
	own, others := splitOwn(children)
	if !containsBase(own, "_manifests") {
		return fmt.Errorf("%w: %s", ErrRepositoryNotFound, repoPath)
	}
	if len(others) == 0 {
		// Nothing nested: one recursive delete. A crash half way leaves a
		// repository that is still an orphan and goes at the next run.
		if err := discard(ctx, dir); err != nil && !isNotFound(err) {
			return fmt.Errorf("removing %s: %w", repoPath, err)
		}
		return nil
	}
	// _manifests goes first: once it is gone the repository no longer
	// exists for the registry, even if deleting the rest fails midway.
	own = append([]string{path.Join(dir, "_manifests")}, without(own, "_manifests")...)
	for _, child := range own {
		if err := discard(ctx, child); err != nil && !isNotFound(err) {
			return fmt.Errorf("removing %s: %w", repoPath, err)
		}
	}
	return nil
}

func splitOwn(children []string) (own, others []string) {
	for _, c := range children {
		if strings.HasPrefix(path.Base(c), "_") {
			own = append(own, c)
		} else {
			others = append(others, c)
		}
	}
	return own, others
}

func containsBase(paths []string, base string) bool {
	for _, p := range paths {
		if path.Base(p) == base {
			return true
		}
	}
	return false
}

func without(paths []string, base string) []string {
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		if path.Base(p) != base {
			out = append(out, p)
		}
	}
	return out
}

// FinishRemoval completes a removal that stopped half way: a repository
// whose _manifests is gone but whose other "_" directories (_layers,
// _uploads) remain. finished is false when there was nothing to do or the
// repository still has its _manifests (it was not reached, or it exists
// again): it is then left alone.
//
// Call it only while nothing writes to the registry: a repository pushed
// for the first time also has _layers before its _manifests.
func FinishRemoval(ctx context.Context, driver storagedriver.StorageDriver, repoPath string, discard Discard) (finished bool, err error) {
	children, err := driver.List(ctx, RepositoryDir(repoPath))
	if err != nil {
		if isNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("finishing the removal of %s: %w", repoPath, err)
	}
	own, _ := splitOwn(children)
	if len(own) == 0 || containsBase(own, "_manifests") {
		return false, nil
	}
	for _, child := range own {
		if err := discard(ctx, child); err != nil && !isNotFound(err) {
			return false, fmt.Errorf("finishing the removal of %s: %w", repoPath, err)
		}
	}
	return true, nil
}
