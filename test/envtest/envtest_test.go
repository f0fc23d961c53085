package envtest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/dvcr/dvcr/test/envtest"
)

// TestCluster exercises the harness end to end on one control plane, since
// each start costs seconds: resources and their phases, kubeconfig files,
// users without rights, Grant, and Stop.
func TestCluster(t *testing.T) {
	c := envtest.Start(t)
	c.CreateNamespace(t, "ns1")
	c.CreateCVI(t, "ubuntu")
	c.CreateVI(t, "ns1", "alpine")
	c.CreateVD(t, "ns1", "disk-ready", "Ready")
	c.CreateVD(t, "ns1", "disk-new", "")

	t.Run("ListResources", func(t *testing.T) {
		expectNames(t, c.Dynamic, envtest.CVIResource, "", "ubuntu")
		expectNames(t, c.Dynamic, envtest.VIResource, "ns1", "alpine")
		disks := expectNames(t, c.Dynamic, envtest.VDResource, "ns1", "disk-new", "disk-ready")
		expectPhase(t, disks, "disk-ready", "Ready")
		expectPhase(t, disks, "disk-new", "")
	})

	t.Run("AdminKubeconfig", func(t *testing.T) {
		dyn := dynamicFromKubeconfig(t, c.Kubeconfig(t))
		expectNames(t, dyn, envtest.VDResource, "ns1", "disk-new", "disk-ready")
	})

	t.Run("NoRightsIsForbidden", func(t *testing.T) {
		dyn := dynamicFromKubeconfig(t, c.KubeconfigFor(t, "nobody"))
		_, err := list(dyn, envtest.VDResource, "ns1")
		if !apierrors.IsForbidden(err) {
			t.Fatalf("listing virtualdisks without rights: got %v, want Forbidden", err)
		}
	})

	t.Run("Grant", func(t *testing.T) {
		dyn := dynamic.NewForConfigOrDie(c.ConfigFor(t, "reader"))
		c.Grant(t, "reader", []rbacv1.PolicyRule{{
			APIGroups: []string{envtest.Group},
			Resources: []string{"virtualdisks"},
			Verbs:     []string{"list"},
		}})
		expectNames(t, dyn, envtest.VDResource, "ns1", "disk-new", "disk-ready")
		// Exactly the granted rights: other resources stay forbidden.
		if _, err := list(dyn, envtest.VIResource, "ns1"); !apierrors.IsForbidden(err) {
			t.Fatalf("listing virtualimages with rights on virtualdisks only: got %v, want Forbidden", err)
		}
	})

	t.Run("DeleteAndStop", func(t *testing.T) {
		c.DeleteVI(t, "ns1", "alpine")
		expectNames(t, c.Dynamic, envtest.VIResource, "ns1")
		if err := c.Stop(); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if _, err := list(c.Dynamic, envtest.CVIResource, ""); err == nil {
			t.Fatal("listing after Stop succeeded; want the API server unreachable")
		}
		if err := c.Stop(); err != nil {
			t.Fatalf("second Stop: %v", err)
		}
	})
}

// TestStartFailsWithoutBinaries checks the message a developer sees before
// running `make testbin`, by running Start from a copy of the module root
// whose bin/k8s is empty.
func TestStartFailsWithoutBinaries(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module github.com/dvcr/dvcr\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	ft := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() { // Start calls FailNow, which ends only its own goroutine
		defer close(done)
		envtest.Start(ft)
	}()
	<-done
	if !ft.fatal || !strings.Contains(ft.msg, "make testbin") {
		t.Fatalf("Start without binaries: fatal=%v msg=%q; want a failure telling to run make testbin", ft.fatal, ft.msg)
	}
}

// fatalRecorder records the Fatalf of the code under test instead of
// failing the test that runs it.
type fatalRecorder struct {
	testing.TB
	fatal bool
	msg   string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.fatal = true
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func list(dyn dynamic.Interface, gvr schema.GroupVersionResource, ns string) (*unstructured.UnstructuredList, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if ns == "" {
		return dyn.Resource(gvr).List(ctx, metav1.ListOptions{})
	}
	return dyn.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
}

// expectNames lists gvr and checks that exactly names (sorted) exist.
func expectNames(t *testing.T, dyn dynamic.Interface, gvr schema.GroupVersionResource, ns string, names ...string) *unstructured.UnstructuredList {
	t.Helper()
	l, err := list(dyn, gvr, ns)
	if err != nil {
		t.Fatalf("listing %s in %q: %v", gvr.Resource, ns, err)
	}
	var got []string
	for _, item := range l.Items {
		got = append(got, item.GetName())
	}
	if !slices.Equal(got, names) {
		t.Fatalf("%s in %q: got %v, want %v", gvr.Resource, ns, got, names)
	}
	return l
}

func expectPhase(t *testing.T, l *unstructured.UnstructuredList, name, want string) {
	t.Helper()
	for _, item := range l.Items {
		if item.GetName() != name {
			continue
		}
		got, _, err := unstructured.NestedString(item.Object, "status", "phase")
		if err != nil || got != want {
			t.Fatalf("phase of %s: got %q (err %v), want %q", name, got, err, want)
		}
		return
	}
	t.Fatalf("%s not listed", name)
}

func dynamicFromKubeconfig(t *testing.T, path string) dynamic.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatalf("loading kubeconfig %s: %v", path, err)
	}
	return dynamic.NewForConfigOrDie(cfg)
}
