package storage

import (
	"context"
	"path"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
)

// CountTags is the number of tags of a repository.
func CountTags(ctx context.Context, driver storagedriver.StorageDriver, repoPath string) (int, error) {
	tags, err := driver.List(ctx, path.Join(RepositoryDir(repoPath), "_manifests", "tags"))
	if isNotFound(err) {
		return 0, nil
	}
	return len(tags), err
}
