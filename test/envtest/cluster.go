package envtest

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/dvcr/dvcr/test/dvcrtest"
)

// startTimeout bounds the start of etcd and of kube-apiserver. envtest's 20 s
// default is too short on a 2-core CI machine when several test packages
// start their control planes at the same time.
const startTimeout = 90 * time.Second

// Cluster is a running control plane. Its clients act as the admin user
// (group system:masters), which bypasses RBAC.
type Cluster struct {
	// Config is the admin's REST config.
	Config *rest.Config
	// Dynamic is an admin client for the virtualization custom resources.
	Dynamic dynamic.Interface
	// Clientset is an admin client for built-in resources (namespaces, RBAC).
	Clientset kubernetes.Interface

	env      *envtest.Environment
	output   *tailBuffer
	stopOnce sync.Once
	stopErr  error
}

// CRDDir is the directory of the virtualization CRDs relative to the
// repository root: the chart's own, the single source of truth.
const CRDDir = "charts/dvcr/files/crds"

// Start starts kube-apiserver and etcd from <repo>/bin/k8s, installs the CRDs
// of <repo>/charts/dvcr/files/crds (the ones the chart ships) and stops
// everything when the test ends. Missing binaries fail the test with a hint
// to run `make testbin`.
func Start(t testing.TB) *Cluster {
	t.Helper()
	return start(t, true)
}

// StartWithoutCRDs is Start without the virtualization CRDs, for a test that
// installs them itself (the chart's crds.install).
func StartWithoutCRDs(t testing.TB) *Cluster {
	t.Helper()
	return start(t, false)
}

func start(t testing.TB, crds bool) *Cluster {
	t.Helper()
	root, err := dvcrtest.FindRepoRoot()
	if err != nil {
		t.Fatalf("envtest: %v", err)
	}
	bin := filepath.Join(root, "bin", "k8s")
	if err := checkBinaries(bin); err != nil {
		t.Fatalf("envtest: %v", err)
	}
	quietOnce.Do(quietControllerRuntime)
	c := &Cluster{output: newTailBuffer(64 << 10)}
	crdDir := ""
	if crds {
		crdDir = filepath.Join(root, filepath.FromSlash(CRDDir))
	}
	c.env = c.environment(bin, crdDir)

	began := time.Now()
	cfg, err := c.env.Start()
	// A failed Start may leave processes running (e.g. when CRD installation
	// fails), and stopping a never-started environment is a no-op.
	t.Cleanup(func() { c.cleanup(t) })
	if err != nil {
		t.Fatalf("envtest: starting the control plane: %v\n--- control plane output (tail) ---\n%s",
			err, c.output.String())
	}
	c.Config = cfg
	c.Dynamic = dynamic.NewForConfigOrDie(cfg)
	c.Clientset = kubernetes.NewForConfigOrDie(cfg)
	if !crds {
		t.Logf("envtest: control plane started in %s (no CRDs)", time.Since(began).Round(time.Millisecond))
		return c
	}
	if err := c.warmUp(); err != nil {
		t.Fatalf("envtest: first requests to the custom resources: %v", err)
	}
	t.Logf("envtest: control plane started in %s", time.Since(began).Round(time.Millisecond))
	return c
}

var quietOnce sync.Once

// quietControllerRuntime gives controller-runtime's global logger a sink.
// envtest logs through it, and controller-runtime prints a stack-trace
// warning to stderr when that happens more than 30 s into a process that set
// no logger, i.e. in any later test of a long package. Its messages add
// nothing to the errors Start reports. Only the first SetLogger of a process
// takes effect, so a test that wants these logs sets its logger before Start.
func quietControllerRuntime() { ctrllog.SetLogger(logr.Discard()) }

// environment configures envtest to use the locally built binaries only and
// to keep the control plane's output for failure reports. crds is the
// directory of the CRDs to install, "" for none.
func (c *Cluster) environment(bin, crds string) *envtest.Environment {
	etcd := &envtest.Etcd{Out: c.output, Err: c.output}
	api := &envtest.APIServer{Out: c.output, Err: c.output}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    bin,
		ControlPlaneStartTimeout: startTimeout,
		ControlPlaneStopTimeout:  30 * time.Second,
		ControlPlane:             envtest.ControlPlane{Etcd: etcd, APIServer: api},
	}
	if crds != "" {
		env.CRDDirectoryPaths = []string{crds}
		env.ErrorIfCRDPathMissing = true
	}
	return env
}

// Stop stops kube-apiserver and etcd, for a test that needs the API to become
// unreachable. It is idempotent: later calls, including the one at the end of
// the test, return the first result.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() { c.stopErr = c.env.Stop() })
	return c.stopErr
}

// cleanup stops the cluster at the end of the test and, if the test failed,
// logs the control plane's last output to help explain why.
func (c *Cluster) cleanup(t testing.TB) {
	if err := c.Stop(); err != nil {
		t.Errorf("envtest: stopping the control plane: %v", err)
	}
	if t.Failed() {
		t.Logf("envtest: control plane output (tail):\n%s", c.output.String())
	}
}

// Kubeconfig writes a kubeconfig for the admin user into a temporary
// directory of t and returns its path, for a CLI subprocess (--kubeconfig).
func (c *Cluster) Kubeconfig(t testing.TB) string {
	t.Helper()
	return writeKubeconfig(t, "admin", c.env.KubeConfig)
}

// KubeconfigFor writes a kubeconfig for a new user authenticated by a client
// certificate with the given name and groups. The user has no rights until
// Grant gives some.
func (c *Cluster) KubeconfigFor(t testing.TB, user string, groups ...string) string {
	t.Helper()
	u := c.addUser(t, user, groups)
	data, err := u.KubeConfig()
	if err != nil {
		t.Fatalf("envtest: kubeconfig for %q: %v", user, err)
	}
	return writeKubeconfig(t, user, data)
}

// ConfigFor is KubeconfigFor for in-process clients.
func (c *Cluster) ConfigFor(t testing.TB, user string, groups ...string) *rest.Config {
	t.Helper()
	return c.addUser(t, user, groups).Config()
}

func (c *Cluster) addUser(t testing.TB, user string, groups []string) *envtest.AuthenticatedUser {
	t.Helper()
	u, err := c.env.AddUser(envtest.User{Name: user, Groups: groups}, nil)
	if err != nil {
		t.Fatalf("envtest: adding user %q: %v", user, err)
	}
	return u
}

func writeKubeconfig(t testing.TB, user string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig-"+filepath.Base(user))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("envtest: writing kubeconfig: %v", err)
	}
	return path
}
