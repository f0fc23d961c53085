package node

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// s3Endpoint is versitygw's address inside the cluster's namespace.
const s3Endpoint = "http://" + nodeIP + ":7070"

// startVersityGW runs versitygw (bin/versitygw, make tools) inside the
// cluster's namespace, on the node's address, with the bucket dvcr.
func startVersityGW(t *testing.T) {
	t.Helper()
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "dvcr"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	gw := clusterCommand(ctx, filepath.Join(repoRoot, "bin", "versitygw"),
		"--access", "AKIA1", "--secret", "SECRET1secret", "--port", nodeIP+":7070", "posix", root)
	var log strings.Builder
	gw.Stdout, gw.Stderr = &log, &log
	if err := gw.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = gw.Wait() })
	eventually(t, 30*time.Second, "versitygw on "+s3Endpoint, func() error {
		_, err := tryRun(t, "curl", "-s", "-o", "/dev/null", s3Endpoint)
		return err
	})
}

// testReplicasOnS3 replaces the release with three replicas on S3, as
// README.md's "Running several replicas on S3" tells, and checks that they
// share the work the way the documentation says.
func testReplicasOnS3(t *testing.T) {
	startVersityGW(t)
	kubectl(t, "delete", "vi", "-n", "project", "--all")
	kubectl(t, "delete", "cvi", "--all")
	run(t, "helm", "uninstall", "dvcr", "-n", ns, "--wait")
	kubectl(t, "-n", ns, "create", "secret", "generic", "dvcr-s3",
		"--from-literal=accessKey=AKIA1", "--from-literal=secretKey=SECRET1secret")
	start := time.Now()
	run(t, "helm", "install", "dvcr", "charts/dvcr", "-n", ns, "--set", "replicas=3",
		"--set", "dvcr.storage.type=S3", "--set", "dvcr.storage.s3.bucket=dvcr",
		"--set", "dvcr.storage.s3.endpoint="+s3Endpoint, "--set", "dvcr.storage.s3.credentialsSecret=dvcr-s3")
	kubectl(t, "-n", ns, "rollout", "status", "deploy/dvcr", "--timeout=300s")
	measure(t, "helm_install_3_replicas_s3_to_ready_seconds", time.Since(start).Seconds())

	srv := newDiskServer(t, 64<<20, 1<<30)
	apply(t, fmt.Sprintf("apiVersion: virtualization.deckhouse.io/v1alpha2\nkind: ClusterVirtualImage\n"+
		"metadata: {name: on-s3}\nspec:\n  dataSource:\n    type: HTTP\n    http: {url: %q}\n", srv.URL))
	waitPhase(t, "cvi/on-s3", "Ready", 3*time.Minute)

	leader := leaseHolder(t)
	follower := ""
	for _, pod := range strings.Fields(kubectl(t, "-n", ns, "get", "pods", "-l", "app.kubernetes.io/name=dvcr",
		"-o", "jsonpath={.items[*].metadata.name}")) {
		if pod != leader {
			follower = pod
		}
	}
	out, err := tryRun(t, "kubectl", "-n", ns, "exec", follower, "--", "dvcr-cleaner", "gc", "run", "--yes")
	if err == nil || !strings.Contains(out, "runs on replica "+leader) {
		t.Errorf("gc run on follower %s: %v, want a refusal naming the leader %s:\n%s", follower, err, leader, out)
	}

	kubectl(t, "-n", ns, "delete", "pod", leader)
	eventually(t, 2*time.Minute, "another replica taking the lead", func() error {
		if now := leaseHolder(t); now == "" || now == leader {
			return fmt.Errorf("the lease is held by %q", now)
		}
		return nil
	})
	assertPulls(t, "cvi/on-s3", 64<<20)
	// While versitygw still runs:
	t.Run("BadUpgradeKeepsServing", testBadUpgradeKeepsServing)
}

// leaseHolder is the replica holding the Lease dvcr-leader.
func leaseHolder(t *testing.T) string {
	t.Helper()
	out, _ := tryRun(t, "kubectl", "-n", ns, "get", "lease", "dvcr-leader", "-o", "jsonpath={.spec.holderIdentity}")
	return strings.TrimSpace(out)
}

// assertPulls pulls repo's manifest and its layer through the Service and
// checks that the layer holds at least size bytes (the disk file and its
// tar header).
func assertPulls(t *testing.T, repo string, size int64) {
	t.Helper()
	base := "http://" + serviceIP(t) + "/v2/" + repo
	accept := "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
	var manifest string
	eventually(t, time.Minute, "the manifest of "+repo, func() error {
		out, err := tryRun(t, "curl", "-sSf", "-H", accept, base+"/manifests/latest")
		manifest = out
		return err
	})
	layer := layerDigest(t, manifest)
	got := run(t, "curl", "-sSfL", "-o", "/dev/null", "-w", "%{size_download}", base+"/blobs/"+layer)
	var n int64
	fmt.Sscan(got, &n)
	if n < size {
		t.Errorf("pulled %d bytes of %s's layer %s, want at least %d", n, repo, layer, size)
	}
}

// layerDigest is the digest of the single layer of an importer's manifest.
func layerDigest(t *testing.T, manifest string) string {
	t.Helper()
	var m struct {
		Layers []struct {
			Digest string `json:"digest"`
		} `json:"layers"`
	}
	if err := json.Unmarshal([]byte(manifest), &m); err != nil || len(m.Layers) != 1 {
		t.Fatalf("manifest with one layer: %v\n%s", err, manifest)
	}
	return m.Layers[0].Digest
}
