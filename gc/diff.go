package gc

import (
	"sort"

	"github.com/dvcr/dvcr/naming"
	"github.com/dvcr/dvcr/storage"
)

// Candidate is a repository eligible for cleanup.
type Candidate struct {
	storage.Repo
	Reason string
}

// Eligible selects the repositories whose resource is gone: a cvi/<name>
// with no ClusterVirtualImage of that (shortened) name, a vi/<ns>/<name>
// with no such VirtualImage, a vd/<ns>/<name> whose VirtualDisk is missing
// or Ready (its image was only needed while the disk provisioned). The
// result is sorted by repository path. It is a pure function.
func Eligible(inv *storage.Inventory, cluster *ClusterInventory, registryHost string) []Candidate {
	live := make(map[string]Resource, len(cluster.Resources))
	for _, r := range cluster.Resources {
		live[naming.RepositoryFor(registryHost, r.Kind, r.Namespace, r.Name).Path()] = r
	}
	var out []Candidate
	for _, repo := range inv.Repos {
		res, found := live[repo.Repository.Path()]
		switch {
		case !found:
			out = append(out, Candidate{Repo: repo, Reason: repo.Kind.ResourceKind() + " not found"})
		case repo.Kind == naming.KindVD && res.Phase == PhaseReady:
			out = append(out, Candidate{Repo: repo, Reason: "VirtualDisk is Ready"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}
