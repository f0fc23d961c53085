package gc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"k8s.io/client-go/rest"

	"github.com/dvcr/dvcr/config"
	"github.com/dvcr/dvcr/naming"
	"github.com/dvcr/dvcr/storage"
	"github.com/dvcr/dvcr/units"
)

// CheckReport is what `dvcr-cleaner gc check` prints: the registry's and the
// cluster's contents, the volume's space and what a run would delete.
type CheckReport struct {
	Registry  map[naming.Kind]int `json:"registry"`
	Cluster   map[naming.Kind]int `json:"cluster"`
	Unmanaged int                 `json:"unmanagedRepositories"`
	Usage     *storage.Usage      `json:"usage,omitempty"`
	Eligible  []EligibleImage     `json:"eligible"`
}

// EligibleImage is one row of the report.
type EligibleImage struct {
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	Repository string `json:"repository"`
	Reason     string `json:"reason"`
}

// NewCheckReport assembles the report; usage may be nil when unknown.
func NewCheckReport(inv *storage.Inventory, cluster *ClusterInventory, usage *storage.Usage, candidates []Candidate) *CheckReport {
	r := &CheckReport{
		Registry:  map[naming.Kind]int{},
		Cluster:   map[naming.Kind]int{},
		Unmanaged: len(inv.Unmanaged),
		Usage:     usage,
		Eligible:  make([]EligibleImage, 0, len(candidates)),
	}
	for _, k := range naming.Kinds {
		r.Registry[k] = inv.Count(k)
		r.Cluster[k] = cluster.Count(k)
	}
	for _, c := range candidates {
		r.Eligible = append(r.Eligible, eligibleImage(c))
	}
	return r
}

func eligibleImage(c Candidate) EligibleImage {
	return EligibleImage{
		Kind:       c.Kind.ResourceKind(),
		Namespace:  c.Namespace,
		Name:       c.Name,
		Repository: c.Path,
		Reason:     c.Reason,
	}
}

// WriteText prints the report in the shape operators know from the
// platform's documentation.
func (r *CheckReport) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Found %s manifests in registry\n", kindCounts(r.Registry))
	fmt.Fprintf(&b, "Found %s resources in cluster\n", kindCounts(r.Cluster))
	if r.Usage != nil {
		writeUsage(&b, *r.Usage)
	}
	writeImages(&b, r.Eligible)
	_, err := io.WriteString(w, b.String())
	return err
}

func kindCounts(counts map[naming.Kind]int) string {
	parts := make([]string, 0, len(naming.Kinds))
	for _, k := range naming.Kinds {
		parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
	}
	return strings.Join(parts, ", ")
}

func writeUsage(b *strings.Builder, u storage.Usage) {
	fmt.Fprintf(b, "%7s  %7s  %7s  %7s\n", "Total", "Used", "Avail", "Use%")
	if u.Unbounded {
		fmt.Fprintf(b, "%7s  %7s  %7s  %7s\n", "-", units.FormatBytes(u.Used), "-", "-")
		b.WriteString("(object storage: a bucket has no fixed capacity, so no total or available space)\n")
		return
	}
	fmt.Fprintf(b, "%7s  %7s  %7s  %7s\n", units.FormatBytes(u.Total), units.FormatBytes(u.Used), units.FormatBytes(u.Available), fmt.Sprintf("%d%%", u.UsedPercent()))
}

// writeImages prints the eligible images, or the single line saying there
// are none.
func writeImages(b *strings.Builder, images []EligibleImage) {
	if len(images) == 0 {
		b.WriteString("No images eligible for cleanup.\n")
		return
	}
	b.WriteString("Images eligible for cleanup:\n")
	writeImageTable(b, images)
}

// writeImageTable prints KIND, NAMESPACE and NAME columns of at least 22 and
// 20 characters, each followed by a space.
func writeImageTable(b *strings.Builder, images []EligibleImage) {
	fmt.Fprintf(b, "%-22s %-20s %s\n", "KIND", "NAMESPACE", "NAME")
	for _, img := range images {
		fmt.Fprintf(b, "%-22s %-20s %s\n", img.Kind, img.Namespace, img.Name)
	}
}

// Lister lists the live resources of the cluster.
type Lister interface {
	List(ctx context.Context) (*ClusterInventory, error)
}

// Check lists the registry, then the cluster, and selects what a run would
// delete. Storage is listed first so that the cluster view is the newer one:
// a resource created between the two listings is seen, never the reverse.
func Check(ctx context.Context, driver storagedriver.StorageDriver, cluster Lister, registryHost string, usage *storage.Usage) (*CheckReport, error) {
	inv, err := storage.ListRepositories(ctx, driver)
	if err != nil {
		return nil, err
	}
	live, err := cluster.List(ctx)
	if err != nil {
		return nil, err
	}
	return NewCheckReport(inv, live, usage, Eligible(inv, live, registryHost)), nil
}

// CheckStore is Check for the registry of cfg, whose storage driver is
// opened, with the volume's usage when it is known: what `gc check` and the
// console's garbage collection panel report. kube is the caller's own client
// configuration, so the cluster is read with the caller's rights.
func CheckStore(ctx context.Context, cfg *config.Config, driver storagedriver.StorageDriver, kube *rest.Config, pageSize int64) (*CheckReport, error) {
	lister, err := NewClusterLister(kube)
	if err != nil {
		return nil, err
	}
	lister.PageSize = pageSize
	var usage *storage.Usage
	switch u, err := storage.StoreUsage(ctx, cfg, driver); {
	case err == nil:
		usage = &u
	case !errors.Is(err, storage.ErrUsageUnknown):
		return nil, err
	}
	return Check(ctx, driver, lister, cfg.DVCR.RegistryHost, usage)
}
