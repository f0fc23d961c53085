// Selection: which repositories a run removes and which it marks, from
// storage and the cluster.

package gc

import (
	"context"
	"fmt"
	"path"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"

	"github.com/dvcr/dvcr/naming"
	"github.com/dvcr/dvcr/storage"
)

// selection is what a run found: the repositories in storage, those to
// remove, and those to mark.
type selection struct {
	inv        *storage.Inventory
	candidates []Candidate
	// kept are the repositories that stay, and the repositories of the
	// live resources that have blobs but no manifest yet: a first import
	// in progress (uploading.go), which storage does not count as a
	// repository before its manifest.
	kept []string
}

// selectEligible lists storage then the cluster and picks the eligible repositories.
func (c *Collector) selectEligible(ctx context.Context, progress func(string)) (*selection, error) {
	progress("listing repositories in storage")
	inv, err := storage.ListRepositories(ctx, c.Driver)
	if err != nil {
		return nil, err
	}
	progress(fmt.Sprintf("found %d cvi, %d vi, %d vd repositories; listing resources in the cluster",
		inv.Count(naming.KindCVI), inv.Count(naming.KindVI), inv.Count(naming.KindVD)))
	live, err := c.listCluster(ctx)
	if err != nil {
		return nil, err
	}
	candidates := Eligible(inv, live, c.Settings.RegistryHost)
	importing, err := firstImports(ctx, c.Driver, inv, live, c.Settings.RegistryHost)
	if err != nil {
		return nil, fmt.Errorf("looking for first imports in progress: nothing deleted: %w", err)
	}
	kept := append(keptRepositories(inv, candidates), importing...)
	return &selection{inv: inv, candidates: candidates, kept: kept}, nil
}

// firstImports are the repositories of live resources that storage does
// not list (no manifest yet) but that already link blobs: an import is
// writing its first image there.
func firstImports(ctx context.Context, driver storagedriver.StorageDriver, inv *storage.Inventory, live *ClusterInventory, registryHost string) ([]string, error) {
	listed := make(map[string]bool, len(inv.Repos))
	for _, r := range inv.Repos {
		listed[r.Repository.Path()] = true
	}
	var out []string
	for _, r := range live.Resources {
		if r.Kind == naming.KindVD && r.Phase == PhaseReady {
			continue // its image is no longer needed
		}
		p := naming.RepositoryFor(registryHost, r.Kind, r.Namespace, r.Name).Path()
		if listed[p] {
			continue
		}
		listed[p] = true
		_, err := driver.Stat(ctx, path.Join(storage.RepositoryDir(p), "_layers"))
		switch {
		case sweepNotFound(err):
		case err != nil:
			return nil, fmt.Errorf("repository %s: %w", p, err)
		default:
			out = append(out, p)
		}
	}
	return out, nil
}
