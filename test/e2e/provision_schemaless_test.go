package e2e

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dvcr/dvcr/test/dvcrtest"
	"github.com/dvcr/dvcr/test/envtest"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// schemalessCRD is a ClusterVirtualImage CRD with no schema to speak of
// and no status subresource: the platform's CRDs may differ from ours, and
// the controller must not depend on them.
const schemalessCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: clustervirtualimages.virtualization.deckhouse.io
spec:
  group: virtualization.deckhouse.io
  scope: Cluster
  names: {kind: ClusterVirtualImage, listKind: ClusterVirtualImageList, plural: clustervirtualimages, singular: clustervirtualimage, shortNames: [cvi]}
  versions:
  - name: v1alpha2
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`

// schemalessVICRD is the same for VirtualImage.
const schemalessVICRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: virtualimages.virtualization.deckhouse.io
spec:
  group: virtualization.deckhouse.io
  scope: Namespaced
  names: {kind: VirtualImage, listKind: VirtualImageList, plural: virtualimages, singular: virtualimage, shortNames: [vi]}
  versions:
  - name: v1alpha2
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`

// TestProvisionWithoutSchema: with CRDs that have no schema and no status
// subresource, an image is still provisioned, its status written whole, and
// the controller runs under its Lease.
func TestProvisionWithoutSchema(t *testing.T) {
	cluster := envtest.StartWithoutCRDs(t)
	e := &provEnv{cluster: cluster, kubeconfig: cluster.Kubeconfig(t)}
	e.apply(t, schemalessCRD)
	e.apply(t, schemalessVICRD) // the controller watches both kinds
	waitCRDs(t, e)
	e = newProvEnvOn(t, cluster, "")
	data := readFile(t, dvcrtest.MakeDiskFile(t, t.TempDir(), "plain", "qcow2", "32M", 1<<20))
	web := newFileServer(t, 0)
	url := web.add("plain.qcow2", data)
	e.apply(t, fmt.Sprintf("apiVersion: virtualization.deckhouse.io/v1alpha2\nkind: ClusterVirtualImage\nmetadata: {name: plain}\n"+
		"spec: {dataSource: {type: HTTP, http: {url: %q}}, platformField: kept}\n", url))
	obj := e.waitPhase(t, "", "plain", "Ready", 2*time.Minute)
	if status(obj, "format") != "qcow2" || status(obj, "size", "unpackedBytes") != fmt.Sprint(32<<20) || status(obj, "cdrom") != "false" {
		t.Errorf("status: %v", obj.Object["status"])
	}
	if _, got := untarSingle(t, pulledLayer(t, e.srv, "cvi/plain")); !bytes.Equal(got, data) {
		t.Fatal("the image differs from the source")
	}
	checkOneImport(t, e, web, obj)
	if out, err := e.kubectl(t, "", "get", "lease", "-n", "default", "dvcr-leader", "-o", "jsonpath={.spec.holderIdentity}"); err != nil || out == "" {
		t.Errorf("lease dvcr-leader: %v %q", err, out)
	}
}

// checkOneImport: without the status subresource every status write moves
// the generation; the controller must not take its own writes for spec
// changes (cancel and restart its import, import the Ready image again,
// report the spec changed), and observedGeneration keeps up.
func checkOneImport(t *testing.T, e *provEnv, web *fileServer, ready *unstructured.Unstructured) {
	t.Helper()
	atReady := web.hits("plain.qcow2")
	time.Sleep(3 * time.Second)
	if n := web.hits("plain.qcow2"); n != atReady || n > 2 {
		t.Errorf("the source was read %d times until Ready and %d since: want one import", atReady, n-atReady)
	}
	obj := e.image(t, "", "plain")
	if gen, observed := obj.GetGeneration(), status(obj, "observedGeneration"); fmt.Sprint(gen) != observed {
		t.Errorf("generation %d, status.observedGeneration %s (at Ready: %d, %s)", gen, observed,
			ready.GetGeneration(), status(ready, "observedGeneration"))
	}
	events, err := e.kubectl(t, "", "get", "events", "-A", "--field-selector", "involvedObject.name=plain")
	if err != nil || strings.Contains(events, "SpecChangedAfterReady") {
		t.Errorf("events of the image: %v\n%s", err, events)
	}
}

// waitCRDs waits until both kinds are served.
func waitCRDs(t *testing.T, e *provEnv) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		a, errA := e.kubectl(t, "", "get", "clustervirtualimages")
		b, errB := e.kubectl(t, "", "get", "virtualimages", "-A")
		if errA == nil && errB == nil && !strings.Contains(a+b, "error") {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("the schema-less CRDs are not served")
}
