package storage

import (
	"context"
	"path"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
)

// LastModified is the newest modification time of the files that make up a
// repository's manifests and tags (its own "_" directories only, not nested
// repositories). A push, a new tag or a re-tag all update it.
func LastModified(ctx context.Context, driver storagedriver.StorageDriver, repoPath string) (time.Time, error) {
	var newest time.Time
	dir := RepositoryDir(repoPath)
	for _, sub := range []string{"_manifests", "_layers"} {
		err := driver.Walk(ctx, path.Join(dir, sub), func(fi storagedriver.FileInfo) error {
			if !fi.IsDir() && fi.ModTime().After(newest) {
				newest = fi.ModTime()
			}
			return nil
		})
		if err != nil && !isNotFound(err) {
			return time.Time{}, err
		}
	}
	return newest, nil
}
