package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dvcr/dvcr/cluster"
	"github.com/dvcr/dvcr/test/dvcrtest"
	"github.com/dvcr/dvcr/test/envtest"
)

// Lease timing of the replica tests: short, so that expiries are seen in
// seconds.
const (
	testLeaseDuration = 5 * time.Second
	testRenewDeadline = 3 * time.Second
	testMargin        = testLeaseDuration / 3
)

// replicaEnv is a real API server, a versitygw bucket and dvcr serve
// replicas on it in cluster mode, each reaching the API server through a
// TCP proxy of its own (to cut one replica off).
type replicaEnv struct {
	cluster    *envtest.Cluster
	s3         *dvcrtest.S3
	kubeconfig string
	replicas   []*replicaProc
}

type replicaProc struct {
	name  string
	srv   *dvcrtest.Server
	proxy *tcpProxy
}

// newReplicaEnv starts n replicas named replica-1…n with env added to each.
func newReplicaEnv(t *testing.T, n int, env ...string) *replicaEnv {
	t.Helper()
	e := &replicaEnv{cluster: envtest.Start(t), s3: dvcrtest.StartS3(t)}
	e.kubeconfig = e.cluster.Kubeconfig(t)
	for i := 1; i <= n; i++ {
		e.replicas = append(e.replicas, e.startReplica(t, fmt.Sprintf("replica-%d", i), env...))
	}
	for _, r := range e.replicas {
		waitWritable(t, r, 30*time.Second)
	}
	return e
}

func (e *replicaEnv) startReplica(t *testing.T, name string, env ...string) *replicaProc {
	t.Helper()
	proxy := newTCPProxy(t, e.cluster.Config.Host)
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{
		Storage:    e.s3.StorageYAML(),
		HTTPSecret: "the-same-on-every-replica",
		DVCR: fmt.Sprintf("  registryHost: dvcr.test\n  provisioning:\n    enabled: true\n  gc:\n    gracePeriod: 0s\n    drainTimeout: 10s\n  cluster:\n    enabled: true\n    namespace: default\n    leaseDuration: %s\n    renewDeadline: %s\n",
			testLeaseDuration, testRenewDeadline),
		Env: append([]string{"KUBECONFIG=" + kubeconfigVia(t, e.kubeconfig, proxy.URL()), "POD_NAME=" + name}, env...),
	})
	return &replicaProc{name: name, srv: srv, proxy: proxy}
}

// leader is the holder of dvcr-leader, once there is one.
func (e *replicaEnv) leader(t *testing.T) *replicaProc {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		lease, err := e.cluster.Clientset.CoordinationV1().Leases("default").Get(context.Background(), cluster.LeaderLease, metav1.GetOptions{})
		if err == nil && lease.Spec.HolderIdentity != nil {
			for _, r := range e.replicas {
				if r.name == *lease.Spec.HolderIdentity {
					return r
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("no replica holds dvcr-leader within 30s")
	return nil
}

// followers are the replicas other than leader.
func (e *replicaEnv) followers(leader *replicaProc) []*replicaProc {
	var out []*replicaProc
	for _, r := range e.replicas {
		if r != leader {
			out = append(out, r)
		}
	}
	return out
}

// cleaner runs dvcr-cleaner against replica r.
func (e *replicaEnv) cleaner(t *testing.T, r *replicaProc, args ...string) dvcrtest.CleanerResult {
	t.Helper()
	return dvcrtest.Cleaner(t, append([]string{"--config", r.srv.ConfigPath, "--kubeconfig", e.kubeconfig}, args...)...)
}

// startGC starts `dvcr-cleaner gc run --yes` against r in the background;
// wait returns its output once it ended.
func (e *replicaEnv) startGC(t *testing.T, r *replicaProc) (wait func() (string, error)) {
	t.Helper()
	cmd := exec.Command(dvcrtest.Binary(t, "dvcr-cleaner"), "--config", r.srv.ConfigPath, "--kubeconfig", e.kubeconfig, "gc", "run", "--yes")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return func() (string, error) {
		select {
		case err := <-done:
			return out.String(), err
		case <-time.After(2 * time.Minute):
			_ = cmd.Process.Kill()
			return out.String(), fmt.Errorf("gc run did not end within 2 minutes")
		}
	}
}

// pushProbe starts a blob upload, the first request of every push, and
// returns the HTTP status: 202 when the replica takes writes, 503 when it
// refuses them.
func pushProbe(t *testing.T, r *replicaProc) int {
	t.Helper()
	resp, err := http.Post(r.srv.URL()+"/v2/cvi/probe/blobs/uploads/", "application/octet-stream", nil)
	if err != nil {
		t.Fatalf("push probe to %s: %v", r.name, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitPush polls pushProbe on r until it answers want.
func waitPush(t *testing.T, r *replicaProc, want int, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	last := 0
	for time.Since(start) < timeout {
		if last = pushProbe(t, r); last == want {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: a push answers %d, not %d, after %s\n%s", r.name, last, want, timeout, tail(r.srv.Stderr(), 20))
	return 0
}

func waitWritable(t *testing.T, r *replicaProc, timeout time.Duration) {
	t.Helper()
	waitPush(t, r, http.StatusAccepted, timeout)
}

// manifestStatus is the status of HEAD of repo:latest on r.
func manifestStatus(t *testing.T, r *replicaProc, repo string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodHead, r.srv.URL()+"/v2/"+repo+"/manifests/latest", nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
