package storage

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/distribution/distribution/v3"
	distributionstorage "github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"

	"github.com/dvcr/dvcr/naming"
)

// Repo is a managed repository found in storage.
type Repo struct {
	naming.Repository
	// Path is the repository's path in storage; it differs from
	// Repository.Path() only for legacy vi/<name> ClusterVirtualImage repos.
	Path string
}

// Inventory is what the registry holds.
type Inventory struct {
	// Repos are the managed repositories, sorted by path.
	Repos []Repo
	// Unmanaged are repositories outside cvi/, vi/<ns>/, vd/<ns>/: never
	// deleted by the garbage collector.
	Unmanaged []string
}

// Count is the number of managed repositories of a kind.
func (inv *Inventory) Count(kind naming.Kind) int {
	n := 0
	for _, r := range inv.Repos {
		if r.Kind == kind {
			n++
		}
	}
	return n
}

// ListRepositories enumerates the repositories in storage through the
// registry's own catalog walk: a repository is a directory holding _manifests.
func ListRepositories(ctx context.Context, driver storagedriver.StorageDriver) (*Inventory, error) {
	inv := &Inventory{}
	if err := enumerate(ctx, driver, inv.add); err != nil {
		return nil, err
	}
	sort.Slice(inv.Repos, func(i, j int) bool { return inv.Repos[i].Path < inv.Repos[j].Path })
	sort.Strings(inv.Unmanaged)
	return inv, nil
}

// RepositoryPaths lists the path of every repository in storage, managed or
// not, sorted: what the garbage collector marks, where ListRepositories
// classifies.
func RepositoryPaths(ctx context.Context, driver storagedriver.StorageDriver) ([]string, error) {
	var paths []string
	err := enumerate(ctx, driver, func(path string) { paths = append(paths, path) })
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	return paths, nil
}

// enumerate calls fn with the path of every repository, through the
// registry's catalog walk (the same definition of a repository as the
// registry's own).
func enumerate(ctx context.Context, driver storagedriver.StorageDriver, fn func(path string)) error {
	ns, err := distributionstorage.NewRegistry(ctx, driver)
	if err != nil {
		return err
	}
	enumerator, ok := ns.(distribution.RepositoryEnumerator)
	if !ok {
		return errors.New("storage: the registry cannot enumerate repositories")
	}
	err = enumerator.Enumerate(ctx, func(path string) error {
		fn(path)
		return ctx.Err()
	})
	if err != nil && !isNotFound(err) { // an empty registry has no repositories directory
		return fmt.Errorf("listing repositories: %w", err)
	}
	return nil
}

func (inv *Inventory) add(path string) {
	if repo, ok := ClassifyPath(path); ok {
		inv.Repos = append(inv.Repos, repo)
		return
	}
	inv.Unmanaged = append(inv.Unmanaged, path)
}

// ClassifyPath maps a repository path in storage to a managed repository.
// A vi/<X> repository (no namespace level) is a ClusterVirtualImage named X,
// as older platform versions stored them.
func ClassifyPath(path string) (Repo, bool) {
	if repo, err := naming.ParseRepository(path); err == nil {
		return Repo{Repository: repo, Path: path}, true
	}
	if name, ok := strings.CutPrefix(path, string(naming.KindVI)+"/"); ok && !strings.Contains(name, "/") {
		if repo, err := naming.ParseRepository(string(naming.KindCVI) + "/" + name); err == nil {
			return Repo{Repository: repo, Path: path}, true
		}
	}
	return Repo{}, false
}

func isNotFound(err error) bool {
	var pnf storagedriver.PathNotFoundError
	return errors.As(err, &pnf)
}

// FindRepository returns the storage path of a managed repository: its own
// path, or for a ClusterVirtualImage the legacy vi/<name> path when only
// that exists. It fails with ErrRepositoryNotFound when neither exists.
func FindRepository(ctx context.Context, driver storagedriver.StorageDriver, repo naming.Repository) (string, error) {
	candidates := []string{repo.Path()}
	if repo.Kind == naming.KindCVI {
		candidates = append(candidates, string(naming.KindVI)+"/"+repo.Name)
	}
	for _, p := range candidates {
		_, err := driver.Stat(ctx, path.Join(RepositoryDir(p), "_manifests"))
		if err == nil {
			return p, nil
		}
		if !isNotFound(err) {
			return "", fmt.Errorf("looking up %s: %w", p, err)
		}
	}
	return "", fmt.Errorf("%w: %s", ErrRepositoryNotFound, repo.Path())
}
