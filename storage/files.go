package storage

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/opencontainers/go-digest"
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
	dir       string
}

// Linked are the blobs the repository links, read from its files:
// _layers/<alg>/<hex>/link and _manifests/revisions/<alg>/<hex>/link.
func (f *RepositoryFiles) Linked() []digest.Digest {
	var linked []digest.Digest
	for _, list := range [][]string{f.Others, f.Manifests} {
		for _, p := range list {
			parts := strings.Split(strings.TrimPrefix(p, f.dir+"/"), "/")
			if parts[len(parts)-1] != "link" {
				continue
			}
			var alg, hex string
			switch {
			case len(parts) == 4 && parts[0] == "_layers":
				alg, hex = parts[1], parts[2]
			case len(parts) == 5 && parts[0] == "_manifests" && parts[1] == "revisions":
				alg, hex = parts[2], parts[3]
			default:
				continue
			}
			if d := digest.NewDigestFromEncoded(digest.Algorithm(alg), hex); d.Validate() == nil {
				linked = append(linked, d)
			}
		}
	}
	return linked
}

// ListRepositoryFiles walks repoPath; ErrRepositoryNotFound when it has no
// _manifests.
func ListRepositoryFiles(ctx context.Context, driver storagedriver.StorageDriver, repoPath string) (*RepositoryFiles, error) {
	dir := RepositoryDir(repoPath)
	files := &RepositoryFiles{dir: dir}
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
