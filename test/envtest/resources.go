package envtest

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/dvcr/dvcr/api/v1alpha2"
	"github.com/dvcr/dvcr/naming"
)

// Group and Version of the virtualization custom resources (CRDDir).
const (
	Group   = v1alpha2.Group
	Version = v1alpha2.Version
)

// Resources of the virtualization CRDs, for the dynamic client.
var (
	CVIResource = v1alpha2.Resources[naming.KindCVI]
	VIResource  = v1alpha2.Resources[naming.KindVI]
	VDResource  = v1alpha2.Resources[naming.KindVD]
)

// callTimeout bounds every API call of the helpers, so that a test against a
// stopped or wedged API server fails instead of hanging.
const callTimeout = 30 * time.Second

// kinds maps the resources above to their kinds, for building objects.
var kinds = map[schema.GroupVersionResource]string{
	CVIResource: naming.KindCVI.ResourceKind(),
	VIResource:  naming.KindVI.ResourceKind(),
	VDResource:  naming.KindVD.ResourceKind(),
}

// CreateNamespace creates namespace ns.
func (c *Cluster) CreateNamespace(t testing.TB, ns string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	if _, err := c.Clientset.CoreV1().Namespaces().Create(ctx, obj, metav1.CreateOptions{}); err != nil {
		t.Fatalf("envtest: creating namespace %s: %v", ns, err)
	}
}

// UploadSpec is the spec Create gives images: the smallest one the CRDs
// accept (an Upload source has no settings), and one a provisioning
// controller would only wait on.
func UploadSpec() map[string]any {
	return map[string]any{"dataSource": map[string]any{"type": "Upload"}}
}

// CreateCVI creates a ClusterVirtualImage with UploadSpec.
func (c *Cluster) CreateCVI(t testing.TB, name string) *unstructured.Unstructured {
	t.Helper()
	return c.Create(t, CVIResource, "", name, "")
}

// CreateVI creates a VirtualImage with UploadSpec in namespace ns.
func (c *Cluster) CreateVI(t testing.TB, ns, name string) *unstructured.Unstructured {
	t.Helper()
	return c.Create(t, VIResource, ns, name, "")
}

// CreateVD creates a VirtualDisk in namespace ns and, unless phase is empty,
// sets status.phase.
func (c *Cluster) CreateVD(t testing.TB, ns, name, phase string) *unstructured.Unstructured {
	t.Helper()
	return c.Create(t, VDResource, ns, name, phase)
}

// Create creates a virtualization resource (ns is "" for the cluster-scoped
// ClusterVirtualImage) and, unless phase is empty, sets status.phase. Images
// get UploadSpec, disks an empty spec.
func (c *Cluster) Create(t testing.TB, gvr schema.GroupVersionResource, ns, name, phase string) *unstructured.Unstructured {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	spec := map[string]any{}
	if gvr != VDResource {
		spec = UploadSpec()
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha2.APIVersion,
		"kind":       kinds[gvr],
		"metadata":   map[string]any{"name": name},
		"spec":       spec,
	}}
	created, err := c.resource(gvr, ns).Create(ctx, obj, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("envtest: creating %s %s/%s: %v", gvr.Resource, ns, name, err)
	}
	if phase == "" {
		return created
	}
	return c.SetPhase(t, gvr, ns, name, phase)
}

// SetPhase sets status.phase of a virtualization resource. The API server
// ignores status in creates and updates of the main resource once the status
// subresource is enabled, so this goes through /status.
func (c *Cluster) SetPhase(t testing.TB, gvr schema.GroupVersionResource, ns, name, phase string) *unstructured.Unstructured {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	client := c.resource(gvr, ns)
	obj, err := client.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("envtest: getting %s %s/%s: %v", gvr.Resource, ns, name, err)
	}
	if err := unstructured.SetNestedField(obj.Object, phase, "status", "phase"); err != nil {
		t.Fatalf("envtest: setting phase of %s %s/%s: %v", gvr.Resource, ns, name, err)
	}
	updated, err := client.UpdateStatus(ctx, obj, metav1.UpdateOptions{})
	if err != nil {
		t.Fatalf("envtest: updating status of %s %s/%s: %v", gvr.Resource, ns, name, err)
	}
	return updated
}

// DeleteCVI deletes a ClusterVirtualImage.
func (c *Cluster) DeleteCVI(t testing.TB, name string) {
	t.Helper()
	c.Delete(t, CVIResource, "", name)
}

// DeleteVI deletes a VirtualImage.
func (c *Cluster) DeleteVI(t testing.TB, ns, name string) {
	t.Helper()
	c.Delete(t, VIResource, ns, name)
}

// DeleteVD deletes a VirtualDisk.
func (c *Cluster) DeleteVD(t testing.TB, ns, name string) {
	t.Helper()
	c.Delete(t, VDResource, ns, name)
}

// Delete deletes a virtualization resource. The CRDs have no finalizers
// and no controller runs, so the object is gone when Delete returns.
func (c *Cluster) Delete(t testing.TB, gvr schema.GroupVersionResource, ns, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if err := c.resource(gvr, ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("envtest: deleting %s %s/%s: %v", gvr.Resource, ns, name, err)
	}
}

func (c *Cluster) resource(gvr schema.GroupVersionResource, ns string) dynamic.ResourceInterface {
	if ns == "" {
		return c.Dynamic.Resource(gvr)
	}
	return c.Dynamic.Resource(gvr).Namespace(ns)
}

// warmUp makes the first requests to the custom resources, which are slow: a
// freshly installed CRD answers lists with 429 until its watch cache is
// initialized (client-go waits out the Retry-After), and the first create of
// any custom resource spends about 2 s in admission. Paying that in Start
// means a cluster is ready when it is returned, and latency-sensitive checks
// (a CLI's timeouts, "API unreachable" detection) are not skewed by the
// first call of a test.
func (c *Cluster) warmUp() error {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	for gvr := range kinds {
		if _, err := c.Dynamic.Resource(gvr).List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
			return err
		}
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha2.APIVersion,
		"kind":       kinds[CVIResource],
		"metadata":   map[string]any{"name": "envtest-warm-up"},
		"spec":       UploadSpec(),
	}}
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	_, err := c.Dynamic.Resource(CVIResource).Create(ctx, obj, dryRun)
	return err
}
