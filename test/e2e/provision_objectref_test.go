package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/dvcr/dvcr/test/dvcrtest"
)

// TestProvisionFromObjectRef: a VirtualImage made from a
// ClusterVirtualImage waits in Pending (SourceNotReady) until its source
// exists and is Ready, then becomes Ready without copying data: no new blob
// in storage, the same manifest, status.sourceUID naming the source.
func TestProvisionFromObjectRef(t *testing.T) {
	e := newProvEnv(t, "")
	e.cluster.CreateNamespace(t, "project")
	e.apply(t, `apiVersion: virtualization.deckhouse.io/v1alpha2
kind: VirtualImage
metadata:
  name: copy
  namespace: project
spec:
  storage: ContainerRegistry
  dataSource:
    type: ObjectRef
    objectRef:
      kind: ClusterVirtualImage
      name: base
`)
	e.waitFor(t, "project", "copy", "Pending with SourceNotReady", time.Minute, func(o *unstructured.Unstructured) bool {
		reason, _ := condition(o, "Ready")
		return status(o, "phase") == "Pending" && reason == "SourceNotReady"
	})

	web := newFileServer(t, 0)
	url := web.add("base.qcow2", readFile(t, dvcrtest.MakeDiskFile(t, t.TempDir(), "base", "qcow2", "32M", 4<<20)))
	e.apply(t, httpCVI("base", url))
	cvi := e.waitPhase(t, "", "base", "Ready", time.Minute)
	blobs := countBlobs(t, e.srv)
	vi := e.waitPhase(t, "project", "copy", "Ready", time.Minute)

	if got := countBlobs(t, e.srv); got != blobs {
		t.Errorf("blob files in storage: %d after the source was Ready, %d after the VirtualImage: data was copied", blobs, got)
	}
	if got, want := status(vi, "sourceUID"), string(cvi.GetUID()); got != want {
		t.Errorf("status.sourceUID = %q, want the ClusterVirtualImage's UID %q", got, want)
	}
	if got := status(vi, "target", "registryURL"); got != "dvcr.test/vi/project/copy:latest" {
		t.Errorf("status.target.registryURL = %q", got)
	}
	for _, f := range []string{"format", "size.storedBytes", "size.unpackedBytes"} {
		path := strings.Split(f, ".")
		if status(vi, path...) != status(cvi, path...) {
			t.Errorf("status.%s: %q, the source's %q", f, status(vi, path...), status(cvi, path...))
		}
	}
	if a, b := headDigest(t, e.srv, "cvi/base"), headDigest(t, e.srv, "vi/project/copy"); a == "" || a != b {
		t.Errorf("manifest digests: source %q, VirtualImage %q", a, b)
	}
}

// headDigest is the Docker-Content-Digest of repo:latest.
func headDigest(t *testing.T, srv *dvcrtest.Server, repo string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodHead, srv.URL()+"/v2/"+repo+"/manifests/latest", nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD %s:latest: %s", repo, resp.Status)
	}
	return resp.Header.Get("Docker-Content-Digest")
}
