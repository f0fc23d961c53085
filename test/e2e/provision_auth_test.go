package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/dvcr/dvcr/test/dvcrtest"
	"github.com/dvcr/dvcr/test/envtest"
)

// TestProvisionBehindAuth: with auth.htpasswd the registry refuses the
// network without credentials, and the controller still provisions
// (it writes in process).
func TestProvisionBehindAuth(t *testing.T) {
	cluster := envtest.Start(t)
	kubeconfig := cluster.Kubeconfig(t)
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{
		Registry: fmt.Sprintf("auth:\n  htpasswd:\n    realm: dvcr-test\n    path: %s\n", writeHtpasswd(t, "admin", "s3cret")),
		DVCR:     "  provisioning:\n    enabled: true\n",
		Env:      []string{"KUBECONFIG=" + kubeconfig},
	})
	e := &provEnv{cluster: cluster, srv: srv, kubeconfig: kubeconfig}
	resp, err := http.Get(srv.URL() + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /v2/ without credentials: %d, want 401", resp.StatusCode)
	}
	data := readFile(t, dvcrtest.MakeDiskFile(t, t.TempDir(), "guarded", "qcow2", "16M", 256<<10))
	url := newFileServer(t, 0).add("guarded.qcow2", data)
	e.apply(t, fmt.Sprintf("apiVersion: virtualization.deckhouse.io/v1alpha2\nkind: ClusterVirtualImage\nmetadata: {name: guarded}\n"+
		"spec: {dataSource: {type: HTTP, http: {url: %q}}}\n", url))
	obj := e.waitPhase(t, "", "guarded", "Ready", time.Minute)
	if status(obj, "format") != "qcow2" || status(obj, "size", "unpackedBytes") != fmt.Sprint(16<<20) {
		t.Errorf("status: %v", obj.Object["status"])
	}
}
