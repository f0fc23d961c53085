package gc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"github.com/dvcr/dvcr/naming"
)

// Group and version of the platform's resources.
const (
	Group   = "virtualization.deckhouse.io"
	Version = "v1alpha2"
)

// PhaseReady is the VirtualDisk phase after which its DVCR image is no
// longer needed (the disk is provisioned).
const PhaseReady = "Ready"

// DefaultPageSize is how many resources one list request asks for.
const DefaultPageSize = 500

// maxListRestarts bounds restarts of a paginated list whose continue token
// expired (410 Gone).
const maxListRestarts = 3

// Resources maps each managed kind to its API resource.
var Resources = map[naming.Kind]schema.GroupVersionResource{
	naming.KindCVI: {Group: Group, Version: Version, Resource: "clustervirtualimages"},
	naming.KindVI:  {Group: Group, Version: Version, Resource: "virtualimages"},
	naming.KindVD:  {Group: Group, Version: Version, Resource: "virtualdisks"},
}

// Resource is a live resource in the cluster.
type Resource struct {
	Kind      naming.Kind `json:"kind"`
	Namespace string      `json:"namespace,omitempty"`
	Name      string      `json:"name"`
	Phase     string      `json:"phase,omitempty"` // VirtualDisk only
}

// ClusterInventory is what the cluster holds.
type ClusterInventory struct {
	Resources []Resource
}

// Count is the number of resources of a kind.
func (c *ClusterInventory) Count(kind naming.Kind) int {
	n := 0
	for _, r := range c.Resources {
		if r.Kind == kind {
			n++
		}
	}
	return n
}

// ClusterLister lists the platform's resources through the API server.
// ClusterVirtualImages and VirtualImages are listed as metadata only (their
// names are all the collector needs); VirtualDisks in full, for their phase.
type ClusterLister struct {
	Dynamic  dynamic.Interface
	Metadata metadata.Interface
	PageSize int64
}

// NewClusterLister builds a lister from a client configuration.
func NewClusterLister(cfg *rest.Config) (*ClusterLister, error) {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &ClusterLister{Dynamic: dyn, Metadata: meta, PageSize: DefaultPageSize}, nil
}

// List lists every managed kind. Any failure fails the whole inventory with
// a *ListError naming the kind: a partial inventory would make the images of
// the missing kind look orphaned.
func (l *ClusterLister) List(ctx context.Context) (*ClusterInventory, error) {
	inv := &ClusterInventory{}
	for _, kind := range naming.Kinds {
		resources, err := l.listKind(ctx, kind)
		if err != nil {
			return nil, listError(kind, err)
		}
		inv.Resources = append(inv.Resources, resources...)
	}
	sort.Slice(inv.Resources, func(i, j int) bool {
		a, b := inv.Resources[i], inv.Resources[j]
		return naming.Prefix(a.Kind, a.Namespace)+a.Name < naming.Prefix(b.Kind, b.Namespace)+b.Name
	})
	return inv, nil
}

// listKind pages through one kind, restarting from the first page when the
// continue token expires.
func (l *ClusterLister) listKind(ctx context.Context, kind naming.Kind) ([]Resource, error) {
	var out []Resource
	opts := metav1.ListOptions{Limit: l.pageSize()}
	for restarts := 0; ; {
		page, next, err := l.listPage(ctx, kind, opts)
		if apierrors.IsResourceExpired(err) && restarts < maxListRestarts {
			restarts++
			out, opts.Continue = nil, ""
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if next == "" {
			return out, nil
		}
		opts.Continue = next
	}
}

func (l *ClusterLister) pageSize() int64 {
	if l.PageSize <= 0 {
		return DefaultPageSize
	}
	return l.PageSize
}

func (l *ClusterLister) listPage(ctx context.Context, kind naming.Kind, opts metav1.ListOptions) ([]Resource, string, error) {
	gvr := Resources[kind]
	if kind == naming.KindVD {
		list, err := l.Dynamic.Resource(gvr).List(ctx, opts)
		if err != nil {
			return nil, "", err
		}
		out := make([]Resource, 0, len(list.Items))
		for _, item := range list.Items {
			phase, _, _ := unstructured.NestedString(item.Object, "status", "phase")
			out = append(out, Resource{Kind: kind, Namespace: item.GetNamespace(), Name: item.GetName(), Phase: phase})
		}
		return out, list.GetContinue(), nil
	}
	list, err := l.Metadata.Resource(gvr).List(ctx, opts)
	if err != nil {
		return nil, "", err
	}
	out := make([]Resource, 0, len(list.Items))
	for _, item := range list.Items {
		out = append(out, Resource{Kind: kind, Namespace: item.Namespace, Name: item.Name})
	}
	return out, list.Continue, nil
}

func listError(kind naming.Kind, err error) *ListError {
	gvr := Resources[kind]
	return &ListError{
		Kind:     kind.ResourceKind(),
		Resource: gvr.Resource + "." + gvr.Group + "/" + gvr.Version,
		Reason:   classify(err),
		Err:      err,
	}
}

// classify names the cause of a failed list in operator terms.
func classify(err error) string {
	var netErr net.Error
	switch {
	case apierrors.IsForbidden(err):
		return "forbidden (the service account lacks list rights)"
	case apierrors.IsUnauthorized(err):
		return "unauthorized (bad or expired credentials)"
	case apierrors.IsNotFound(err):
		return "kind not installed (no such resource in the API server)"
	case errors.Is(err, context.DeadlineExceeded), apierrors.IsTimeout(err), apierrors.IsServerTimeout(err),
		errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case utilnet.IsConnectionRefused(err), utilnet.IsConnectionReset(err), utilnet.IsProbableEOF(err), errors.As(err, new(*net.OpError)):
		return "API server unreachable"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "error"
}

// listCluster lists the resources that own repositories.
func (c *Collector) listCluster(ctx context.Context) (*ClusterInventory, error) {
	lister, err := c.NewLister()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrClusterList, err)
	}
	return lister.List(ctx)
}
