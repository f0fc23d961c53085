package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/dvcr/dvcr/test/dvcrtest"
	"github.com/dvcr/dvcr/test/envtest"
)

// provEnv is a real API server with the chart's CRDs and a dvcr serve with
// provisioning on that reaches it through KUBECONFIG.
type provEnv struct {
	cluster    *envtest.Cluster
	srv        *dvcrtest.Server
	kubeconfig string
}

func newProvEnv(t *testing.T, provisioning string) *provEnv {
	t.Helper()
	return newProvEnvOn(t, envtest.Start(t), provisioning)
}

// newProvEnvOn starts dvcr serve with provisioning against cluster. The
// controller runs under leader election (POD_NAMESPACE), as in a pod.
func newProvEnvOn(t *testing.T, cluster *envtest.Cluster, provisioning string) *provEnv {
	t.Helper()
	kubeconfig := cluster.Kubeconfig(t)
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{
		DVCR: "  registryHost: dvcr.test\n  provisioning:\n    enabled: true\n" + provisioning,
		Env:  []string{"KUBECONFIG=" + kubeconfig, "POD_NAMESPACE=default"},
	})
	return &provEnv{cluster: cluster, srv: srv, kubeconfig: kubeconfig}
}

// kubectl runs bin/k8s/kubectl against the test cluster.
func (e *provEnv) kubectl(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	bin := filepath.Join(dvcrtest.RepoRoot(t), "bin", "k8s", "kubectl")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", e.kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (e *provEnv) apply(t *testing.T, manifest string) {
	t.Helper()
	if out, err := e.kubectl(t, manifest, "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply: %v\n%s\n%s", err, out, manifest)
	}
}

// watch starts `kubectl get KIND NAME -w` and returns a function that stops
// it and returns what it printed.
func (e *provEnv) watch(t *testing.T, args ...string) func() string {
	t.Helper()
	bin := filepath.Join(dvcrtest.RepoRoot(t), "bin", "k8s", "kubectl")
	var out bytes.Buffer
	var mu sync.Mutex
	cmd := exec.Command(bin, append([]string{"--kubeconfig", e.kubeconfig, "get", "-w"}, args...)...)
	cmd.Stdout = writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) })
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() string {
		if !stopped {
			stopped = true
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		mu.Lock()
		defer mu.Unlock()
		return out.String()
	}
	t.Cleanup(func() { stop() })
	return stop
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// image reads a cvi (ns "") or vi.
func (e *provEnv) image(t *testing.T, ns, name string) *unstructured.Unstructured {
	t.Helper()
	gvr := envtest.CVIResource
	if ns != "" {
		gvr = envtest.VIResource
	}
	obj, err := e.cluster.Dynamic.Resource(gvr).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get %s %s/%s: %v", gvr.Resource, ns, name, err)
	}
	return obj
}

// waitPhase polls until the image is in phase, and fails on Failed (unless
// that is the phase waited for) or after timeout.
func (e *provEnv) waitPhase(t *testing.T, ns, name, phase string, timeout time.Duration) *unstructured.Unstructured {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var obj *unstructured.Unstructured
	for time.Now().Before(deadline) {
		obj = e.image(t, ns, name)
		got := status(obj, "phase")
		if got == phase {
			return obj
		}
		if got == "Failed" && phase != "Failed" {
			t.Fatalf("%s/%s failed: %s", ns, name, conditions(obj))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s/%s not %s within %s: phase %q, %s\nserver:\n%s", ns, name, phase, timeout, status(obj, "phase"), conditions(obj), e.srv.Stderr())
	return nil
}

// waitFor polls the image until ok says so, failing after timeout.
func (e *provEnv) waitFor(t *testing.T, ns, name, what string, timeout time.Duration, ok func(*unstructured.Unstructured) bool) *unstructured.Unstructured {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var obj *unstructured.Unstructured
	for time.Now().Before(deadline) {
		if obj = e.image(t, ns, name); ok(obj) {
			return obj
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s/%s: not %s within %s: phase %q, %s\nserver:\n%s", ns, name, what, timeout, status(obj, "phase"), conditions(obj), e.srv.Stderr())
	return nil
}

// randomData is n random bytes.
func randomData(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// httpCVI is a ClusterVirtualImage manifest with an HTTP source.
func httpCVI(name, url string) string {
	return fmt.Sprintf(`apiVersion: virtualization.deckhouse.io/v1alpha2
kind: ClusterVirtualImage
metadata:
  name: %s
spec:
  dataSource:
    type: HTTP
    http:
      url: %s
`, name, url)
}

// status reads a string at status.<path...>.
func status(obj *unstructured.Unstructured, path ...string) string {
	if obj == nil {
		return ""
	}
	v, _, _ := unstructured.NestedFieldNoCopy(obj.Object, append([]string{"status"}, path...)...)
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return ""
	default:
		return fmt.Sprint(x)
	}
}

// conditions renders status.conditions as "Type=Status/Reason: message".
func conditions(obj *unstructured.Unstructured) string {
	if obj == nil {
		return ""
	}
	list, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	var parts []string
	for _, c := range list {
		m, _ := c.(map[string]any)
		parts = append(parts, fmt.Sprintf("%v=%v/%v: %v", m["type"], m["status"], m["reason"], m["message"]))
	}
	return strings.Join(parts, "; ")
}

// condition returns reason and message of one condition type.
func condition(obj *unstructured.Unstructured, typ string) (reason, message string) {
	list, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range list {
		m, _ := c.(map[string]any)
		if m["type"] == typ {
			return fmt.Sprint(m["reason"]), fmt.Sprint(m["message"])
		}
	}
	return "", ""
}

// fileServer serves files over HTTP on 127.0.0.1 at a bounded rate (0: no
// limit), counting the transfers running at once.
type fileServer struct {
	*httptest.Server
	files   map[string][]byte
	rate    int // bytes per second
	running atomic.Int32
	peak    atomic.Int32
	mu      sync.Mutex
	gets    map[string]int // requests per path
}

func newFileServer(t *testing.T, rate int) *fileServer {
	t.Helper()
	fs := &fileServer{files: map[string][]byte{}, rate: rate, gets: map[string]int{}}
	fs.Server = httptest.NewServer(http.HandlerFunc(fs.serve))
	t.Cleanup(fs.Close)
	return fs
}

// add serves data at /name and returns its URL.
func (fs *fileServer) add(name string, data []byte) string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.files["/"+name] = data
	return fs.URL + "/" + name
}

// hits is the number of requests for /name so far.
func (fs *fileServer) hits(name string) int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.gets["/"+name]
}

func (fs *fileServer) serve(w http.ResponseWriter, r *http.Request) {
	fs.mu.Lock()
	data, ok := fs.files[r.URL.Path]
	fs.gets[r.URL.Path]++
	fs.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	n := fs.running.Add(1)
	defer fs.running.Add(-1)
	for {
		p := fs.peak.Load()
		if n <= p || fs.peak.CompareAndSwap(p, n) {
			break
		}
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	const piece = 256 << 10
	for off := 0; off < len(data); off += piece {
		end := min(off+piece, len(data))
		// Paced before each piece, not after the last one: a handler still
		// counted in running is one whose client has not got everything.
		if fs.rate > 0 {
			time.Sleep(time.Duration(float64(end-off) / float64(fs.rate) * float64(time.Second)))
		}
		if _, err := w.Write(data[off:end]); err != nil {
			return
		}
	}
}

// readFile is os.ReadFile failing the test.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
