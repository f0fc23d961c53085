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
		if err := driver.Delete(ctx, dir); err != nil && !isNotFound(err) {
			return fmt.Errorf("removing %s: %w", repoPath, err)
		}
		return nil
	}
	// _manifests goes first: once it is gone the repository no longer
	// exists for the registry, even if deleting the rest fails midway.
	own = append([]string{path.Join(dir, "_manifests")}, without(own, "_manifests")...)
	for _, child := range own {
		if err := driver.Delete(ctx, child); err != nil && !isNotFound(err) {
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
