package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/dvcr/dvcr/config"
	"github.com/dvcr/dvcr/naming"
	"github.com/dvcr/dvcr/test/dvcrtest"
	"github.com/dvcr/dvcr/test/envtest"
)

// seedScenario fills a real registry and a real API server with the
// documentation's example: a deleted ClusterVirtualImage debian-12, a Ready
// VirtualDisk default/debian-10-root and a deleted VirtualImage
// default/ubuntu-2204, next to live images of each kind, a provisioning
// VirtualDisk and a ClusterVirtualImage whose name is long enough to be
// shortened.
type seedScenario struct {
	srv        *dvcrtest.Server
	cluster    *envtest.Cluster
	kubeconfig string
	longName   string
	disk       *dvcrtest.DiskImage // the disk pushed into every repository
}

func newSeedScenario(t *testing.T) *seedScenario {
	t.Helper()
	return newSeedScenarioOn(t, dvcrtest.ServerOptions{})
}

// newSeedScenarioOn is the scenario in a registry started with opts (its
// storage, e.g. S3).
func newSeedScenarioOn(t *testing.T, opts dvcrtest.ServerOptions) *seedScenario {
	t.Helper()
	s := &seedScenario{cluster: envtest.Start(t)}
	s.kubeconfig = s.cluster.Kubeconfig(t)
	opts.Env = append(opts.Env, "KUBECONFIG="+s.kubeconfig) // for runs through the server
	s.srv = dvcrtest.StartServer(t, opts)
	disk := dvcrtest.MakeDisk(t, "seed", "qcow2", "16M", 64*1024)
	s.disk = disk
	s.longName = "long-" + strings.Repeat("a", 240)
	longRepo := naming.RepositoryFor(config.DefaultRegistryHost, naming.KindCVI, "", s.longName).Path()
	for _, repo := range []string{
		"cvi/debian-12", "cvi/alpine", longRepo,
		"vi/default/ubuntu-2204", "vi/default/win-11", "vi/default/fedora", "vi/prod/centos", "vi/prod/rocky",
		"vd/default/debian-10-root", "vd/default/provisioning",
	} {
		dvcrtest.Push(t, s.srv, disk, repo, "latest")
	}
	c := s.cluster
	c.CreateNamespace(t, "prod")
	c.CreateCVI(t, "alpine")
	c.CreateCVI(t, s.longName)
	for _, vi := range [][2]string{{"default", "win-11"}, {"default", "fedora"}, {"prod", "centos"}, {"prod", "rocky"}, {"prod", "no-image-yet"}} {
		c.CreateVI(t, vi[0], vi[1])
	}
	c.CreateVD(t, "default", "debian-10-root", "Ready")
	c.CreateVD(t, "default", "provisioning", "Provisioning")
	for i := range 9 {
		c.CreateVD(t, "prod", fmt.Sprintf("data-%d", i), "Ready")
	}
	return s
}

func (s *seedScenario) cleaner(t *testing.T, args ...string) dvcrtest.CleanerResult {
	t.Helper()
	return dvcrtest.Cleaner(t, append([]string{"--config", s.srv.ConfigPath, "--kubeconfig", s.kubeconfig}, args...)...)
}

// wantCheck is the documented shape with this scenario's numbers; the usage
// row depends on the machine and is matched by pattern.
var wantCheck = regexp.MustCompile(`^Found 3 cvi, 5 vi, 2 vd manifests in registry
Found 2 cvi, 5 vi, 11 vd resources in cluster
  Total     Used    Avail     Use%
 *[0-9.]+[KMGTP]?i?B +[0-9.]+[KMGTP]?i?B +[0-9.]+[KMGTP]?i?B +[0-9]+%
Images eligible for cleanup:
KIND                   NAMESPACE            NAME
ClusterVirtualImage                         debian-12
VirtualDisk            default              debian-10-root
VirtualImage           default              ubuntu-2204
$`)

func TestGCCheckSeedScenario(t *testing.T) {
	s := newSeedScenario(t)
	for _, pageSize := range []string{"500", "2"} { // 2: every kind takes several pages
		t.Run("page-size="+pageSize, func(t *testing.T) {
			res := s.cleaner(t, "gc", "check", "--page-size", pageSize)
			if res.ExitCode != 0 || !wantCheck.MatchString(res.Stdout) {
				t.Fatalf("gc check: exit %d\n--- got ---\n%s--- stderr ---\n%s", res.ExitCode, res.Stdout, res.Stderr)
			}
		})
	}
	t.Run("json", func(t *testing.T) {
		res := s.cleaner(t, "gc", "check", "-o", "json")
		var report struct {
			Registry map[string]int `json:"registry"`
			Cluster  map[string]int `json:"cluster"`
			Eligible []struct{ Kind, Namespace, Name, Repository string }
		}
		if err := json.Unmarshal([]byte(res.Stdout), &report); err != nil {
			t.Fatalf("gc check -o json: %v\n%s", err, res.Stdout)
		}
		var repos []string
		for _, e := range report.Eligible {
			repos = append(repos, e.Repository)
		}
		want := "cvi/debian-12 vd/default/debian-10-root vi/default/ubuntu-2204"
		if got := strings.Join(repos, " "); got != want || report.Cluster["vd"] != 11 || report.Registry["cvi"] != 3 {
			t.Fatalf("json report: eligible %q (want %q), counts %v %v", got, want, report.Registry, report.Cluster)
		}
	})
	t.Run("ls", func(t *testing.T) {
		res := s.cleaner(t, "ls", "vi", "-A")
		for _, name := range []string{"ubuntu-2204", "win-11", "fedora", "centos", "rocky"} {
			if !strings.Contains(res.Stdout, name) {
				t.Errorf("ls vi -A lacks %s:\n%s", name, res.Stdout)
			}
		}
		if res := s.cleaner(t, "ls", "vi", "-n", "prod", "-o", "json"); strings.Contains(res.Stdout, "ubuntu-2204") || !strings.Contains(res.Stdout, "rocky") {
			t.Errorf("ls vi -n prod:\n%s", res.Stdout)
		}
	})
}

func TestGCCheckNothingEligible(t *testing.T) {
	cluster := envtest.Start(t)
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{})
	cluster.CreateCVI(t, "alpine")
	dvcrtest.Push(t, srv, dvcrtest.MakeDisk(t, "a", "raw", "1M", 4096), "cvi/alpine", "latest")
	res := dvcrtest.MustCleaner(t, "--config", srv.ConfigPath, "--kubeconfig", cluster.Kubeconfig(t), "gc", "check")
	if !strings.HasSuffix(res.Stdout, "%\nNo images eligible for cleanup.\n") || strings.Contains(res.Stdout, "KIND") {
		t.Fatalf("gc check with nothing eligible:\n%s", res.Stdout)
	}
}

// TestGCCheckClusterFailures: whatever stops a kind from being listed, gc
// check fails naming the kind and the cause, and never reports images as
// orphaned.
func TestGCCheckClusterFailures(t *testing.T) {
	cluster := envtest.Start(t)
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{})
	dvcrtest.Push(t, srv, dvcrtest.MakeDisk(t, "a", "raw", "1M", 4096), "vd/default/disk", "latest")
	run := func(t *testing.T, kubeconfig string, extra ...string) dvcrtest.CleanerResult {
		args := append([]string{"--config", srv.ConfigPath, "--kubeconfig", kubeconfig}, extra...)
		return dvcrtest.Cleaner(t, append(args, "gc", "check")...)
	}
	listCVIAndVI := rbacv1.PolicyRule{Verbs: []string{"get", "list"}, APIGroups: []string{envtest.Group}, Resources: []string{"clustervirtualimages", "virtualimages"}}
	cluster.Grant(t, "no-vd", []rbacv1.PolicyRule{listCVIAndVI})

	cases := []struct {
		name       string
		kubeconfig func(t *testing.T) string
		extra      []string
		want       []string
	}{
		{"forbidden", func(t *testing.T) string { return cluster.KubeconfigFor(t, "nobody") }, nil,
			[]string{"ClusterVirtualImage", "forbidden"}},
		{"forbidden one kind", func(t *testing.T) string { return cluster.KubeconfigFor(t, "no-vd") }, nil,
			[]string{"VirtualDisk", "forbidden"}},
		{"unreachable", func(t *testing.T) string { return kubeconfigFor(t, closedPort(t)) }, nil,
			[]string{"ClusterVirtualImage", "unreachable"}},
		{"timeout", func(t *testing.T) string { return kubeconfigFor(t, blackHole(t)) }, []string{"--request-timeout", "1s"},
			[]string{"ClusterVirtualImage", "timeout"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assertCheckFails(t, run(t, tc.kubeconfig(t), tc.extra...), tc.want...)
		})
	}
	t.Run("kind not installed", func(t *testing.T) {
		cluster.DeleteCRD(t, "virtualdisks."+envtest.Group)
		assertCheckFails(t, run(t, cluster.Kubeconfig(t)), "VirtualDisk", "not installed")
	})
}

func assertCheckFails(t *testing.T, res dvcrtest.CleanerResult, want ...string) {
	t.Helper()
	if res.ExitCode == 0 {
		t.Fatalf("gc check succeeded, want a failure:\n%s", res.Stdout)
	}
	if strings.Contains(res.Stdout, "eligible") {
		t.Errorf("a failed check printed a report:\n%s", res.Stdout)
	}
	for _, w := range want {
		if !strings.Contains(res.Stderr, w) {
			t.Errorf("stderr does not name %q:\n%s", w, res.Stderr)
		}
	}
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// blackHole accepts connections and never answers.
func blackHole(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

func kubeconfigFor(t *testing.T, addr string) string {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	data := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://%s"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`, addr)
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
