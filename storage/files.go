package storage

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
)

// RepositoryFiles are the files of a repository's own "_" directories,
// found in one walk: on object storage one recursive listing, where
// RemoveRepository would list and delete each directory. Nested
// repositories' files are left out. Manifests lists the files under
// _manifests (delete them first: once they are gone the repository no
// longer exists for the registry); Modified is the newest modification
// time of _manifests and _layers files, as LastModified tells it.
type RepositoryFiles struct {
	Manifests []string
	Others    []string
	Modified  time.Time
}

// ListRepositoryFiles walks repoPath; ErrRepositoryNotFound when it has no
// _manifests.
func ListRepositoryFiles(ctx context.Context, driver storagedriver.StorageDriver, repoPath string) (*RepositoryFiles, error) {
	dir := RepositoryDir(repoPath)
	files := &RepositoryFiles{}
	err := driver.Walk(ctx, dir, func(fi storagedriver.FileInfo) error {
		rel := strings.TrimPrefix(fi.Path(), dir+"/")
		own, _, _ := strings.Cut(rel, "/")
		if !strings.HasPrefix(own, "_") {
			if fi.IsDir() {
				return storagedriver.ErrSkipDir // a nested repository
			}
			return nil
		}
		if fi.IsDir() {
			return nil
		}
		if (own == "_manifests" || own == "_layers") && fi.ModTime().After(files.Modified) {
			files.Modified = fi.ModTime()
		}
		if own == "_manifests" {
			files.Manifests = append(files.Manifests, path.Join(dir, rel))
		} else {
			files.Others = append(files.Others, path.Join(dir, rel))
		}
		return nil
	})
	if err != nil && !isNotFound(err) {
		return nil, fmt.Errorf("listing %s: %w", repoPath, err)
	}
	if len(files.Manifests) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrRepositoryNotFound, repoPath)
	}
	return files, nil
}
