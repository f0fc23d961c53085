package gc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/pager"

	"github.com/dvcr/dvcr/api/v1alpha2"
	"github.com/dvcr/dvcr/naming"
)

// PhaseReady is the VirtualDisk phase after which its DVCR image is no
// longer needed (the disk is provisioned).
const PhaseReady = "Ready"

// DefaultPageSize is how many resources one list request asks for.
const DefaultPageSize = 500

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
	md, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &ClusterLister{Dynamic: dyn, Metadata: md, PageSize: DefaultPageSize}, nil
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

// listKind pages through one kind with client-go's pager. When the
// continue token expires half way (410 Gone), the pager lists the kind
// again in one unpaginated request, which cannot expire.
func (l *ClusterLister) listKind(ctx context.Context, kind naming.Kind) ([]Resource, error) {
	gvr := v1alpha2.Resources[kind]
	p := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		if kind == naming.KindVD {
			return l.Dynamic.Resource(gvr).List(ctx, opts)
		}
		return l.Metadata.Resource(gvr).List(ctx, opts)
	})
	p.PageSize = l.pageSize()
	list, _, err := p.List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []Resource
	err = meta.EachListItem(list, func(obj runtime.Object) error {
		item, err := meta.Accessor(obj)
		if err != nil {
			return err
		}
		r := Resource{Kind: kind, Namespace: item.GetNamespace(), Name: item.GetName()}
		if u, ok := obj.(*unstructured.Unstructured); ok { // VirtualDisks, listed in full
			r.Phase, _, _ = unstructured.NestedString(u.Object, "status", "phase")
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

func (l *ClusterLister) pageSize() int64 {
	if l.PageSize <= 0 {
		return DefaultPageSize
	}
	return l.PageSize
}

func listError(kind naming.Kind, err error) *ListError {
	gvr := v1alpha2.Resources[kind]
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
