package chart

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	appsv1 "k8s.io/api/apps/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/dvcr/dvcr/test/dvcrtest"
	"github.com/dvcr/dvcr/test/envtest"
)

// TestClusterLifecycle installs, upgrades, uninstalls and reinstalls the
// chart on a real kube-apiserver: what `helm template` cannot show. Each step
// builds on the previous one.
func TestClusterLifecycle(t *testing.T) {
	helmBin(t) // fail fast, before the control plane starts
	c := envtest.Start(t)
	kc := c.Kubeconfig(t)
	k := &kube{t: t, cs: c.Clientset, ext: apiextensionsclient.NewForConfigOrDie(c.Config)}

	// There is no controller manager: claims never bind by themselves, and
	// the PersistentVolumeClaimResize admission plugin only lets a bound
	// claim of an expandable class grow.
	k.storageClass("expandable", true)
	k.storageClass("other", true)

	upgrade := func(args ...string) (string, error) {
		t.Helper()
		base := []string{"upgrade", "--install", release, chartDir(t), "--namespace", namespace,
			"--create-namespace", "--reuse-values"}
		return helm(t, kc, append(base, args...)...)
	}
	mustUpgrade := func(t *testing.T, args ...string) string {
		t.Helper()
		out, err := upgrade(args...)
		if err != nil {
			t.Fatalf("helm upgrade --install %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	var first state
	t.Run("install", func(t *testing.T) {
		out := mustUpgrade(t,
			"--set", "dvcr.storage.persistentVolumeClaim.storageClassName=expandable",
			"--set", "dvcr.storage.persistentVolumeClaim.size=1Gi",
			"--set", "dvcr.auth.enabled=true",
			"--set", "dvcr.auth.username=admin",
			"--set", "dvcr.auth.password=first-password",
		)
		for _, want := range []string{"dvcr.d8-virtualization.svc", "exec deploy/dvcr -- dvcr-cleaner gc check", "get pvc dvcr"} {
			if !strings.Contains(out, want) {
				t.Errorf("NOTES do not mention %q:\n%s", want, out)
			}
		}
		first = k.state()
		if got := first.pvc.Spec.Resources.Requests[corev1.ResourceStorage]; got.Cmp(resource.MustParse("1Gi")) != 0 {
			t.Errorf("PVC size = %s, want 1Gi", got.String())
		}
		if c := first.pvc.Spec.StorageClassName; c == nil || *c != "expandable" {
			t.Errorf("PVC storageClassName = %v, want expandable", c)
		}
		first.verifies(t, "first-password")
		k.bind(first.pvc)
	})

	t.Run("foreign crds are left alone", func(t *testing.T) {
		// envtest installed the CRDs before the release: they belong to
		// someone else (the platform), so the chart neither adopted nor
		// changed them although crds.install is true.
		for _, name := range crdNames {
			crd := k.crd(name)
			if crd == nil {
				t.Fatalf("CRD %s gone", name)
			}
			if _, ok := crd.Annotations["meta.helm.sh/release-name"]; ok || crd.Labels["app.kubernetes.io/managed-by"] == "Helm" {
				t.Errorf("CRD %s adopted by the release: %v %v", name, crd.Labels, crd.Annotations)
			}
		}
	})

	t.Run("rbac of the gc and the provisioning controller", func(t *testing.T) {
		sa := "system:serviceaccount:" + namespace + ":" + first.deployment.Spec.Template.Spec.ServiceAccountName
		const virt = "virtualization.deckhouse.io"
		for _, res := range []string{"clustervirtualimages", "virtualimages", "virtualdisks"} {
			image := res != "virtualdisks"
			for _, verb := range []string{"get", "list"} {
				k.access(sa, virt, res, verb, true)
			}
			k.access(sa, virt, res, "watch", image)
			for _, verb := range []string{"create", "update", "patch", "delete"} {
				k.access(sa, virt, res, verb, false)
			}
			for _, verb := range []string{"update", "patch"} {
				k.accessTo(sa, virt, res, "status", "default", verb, image)
			}
		}
		for _, group := range []string{"", "events.k8s.io"} {
			for _, verb := range []string{"create", "patch"} {
				k.access(sa, group, "events", verb, true)
			}
			k.access(sa, group, "events", "delete", false)
		}
		k.access(sa, "", "secrets", "get", true)
		for _, verb := range []string{"list", "watch", "create", "update"} {
			k.access(sa, "", "secrets", verb, false)
		}
		for _, verb := range []string{"get", "create", "update"} {
			k.accessTo(sa, "coordination.k8s.io", "leases", "", namespace, verb, true)
			k.access(sa, "coordination.k8s.io", "leases", verb, false) // another namespace
		}
		k.accessTo(sa, "coordination.k8s.io", "leases", "", namespace, "delete", false)
		k.access(sa, "", "persistentvolumeclaims", "list", false)
		gcCheckAs(t, c, kc, sa)
	})

	t.Run("size raised grows the pvc in place", func(t *testing.T) {
		mustUpgrade(t, "--set-string", "dvcr.storage.persistentVolumeClaim.size=2Gi")
		now := k.state()
		if now.pvc.UID != first.pvc.UID {
			t.Fatalf("PVC was re-created (uid %s -> %s)", first.pvc.UID, now.pvc.UID)
		}
		if got := now.pvc.Spec.Resources.Requests[corev1.ResourceStorage]; got.Cmp(resource.MustParse("2Gi")) != 0 {
			t.Errorf("PVC size = %s, want 2Gi", got.String())
		}
		if c := now.pvc.Spec.StorageClassName; c == nil || *c != "expandable" {
			t.Errorf("PVC storageClassName = %v, want expandable", c)
		}
		// Neither the configuration nor the credentials changed: the bcrypt
		// hash is reused and the pod template is untouched (no restart).
		if string(now.secret.Data["htpasswd"]) != string(first.secret.Data["htpasswd"]) {
			t.Errorf("htpasswd changed although the credentials did not")
		}
		if now.deployment.Generation != first.deployment.Generation {
			t.Errorf("Deployment generation %d -> %d: the pod would restart for a PVC resize",
				first.deployment.Generation, now.deployment.Generation)
		}
		first = now
	})

	t.Run("schedule change rolls the pod", func(t *testing.T) {
		mustUpgrade(t, "--set-string", "dvcr.gc.schedule=0 20 * * *")
		now := k.state()
		if !strings.Contains(now.configMap.Data["config.yml"], `schedule: "0 20 * * *"`) {
			t.Errorf("config.yml has no schedule 0 20 * * *:\n%s", now.configMap.Data["config.yml"])
		}
		if now.checksum("config") == first.checksum("config") || now.deployment.Generation == first.deployment.Generation {
			t.Errorf("pod template not changed by a new schedule (checksum %s, generation %d)",
				now.checksum("config"), now.deployment.Generation)
		}
		if now.checksum("secret") != first.checksum("secret") {
			t.Errorf("checksum/secret changed although the credentials did not")
		}
		first = now
	})

	t.Run("password change rolls the pod", func(t *testing.T) {
		mustUpgrade(t, "--set", "dvcr.auth.password=second-password")
		now := k.state()
		now.verifies(t, "second-password")
		if now.checksum("secret") == first.checksum("secret") || now.deployment.Generation == first.deployment.Generation {
			t.Errorf("pod template not changed by new credentials")
		}
		if now.checksum("config") != first.checksum("config") {
			t.Errorf("checksum/config changed although the configuration did not")
		}
		first = now
	})

	t.Run("storage class change is refused", func(t *testing.T) {
		out, err := upgrade("--set", "dvcr.storage.persistentVolumeClaim.storageClassName=other")
		if err == nil {
			t.Fatalf("upgrade to another storage class succeeded:\n%s", out)
		}
		for _, want := range []string{"dvcr.storage.persistentVolumeClaim.storageClassName", `"expandable"`} {
			if !strings.Contains(out, want) {
				t.Errorf("error does not contain %s:\n%s", want, out)
			}
		}
		if now := k.state(); now.pvc.UID != first.pvc.UID || *now.pvc.Spec.StorageClassName != "expandable" {
			t.Errorf("PVC changed by a refused upgrade")
		}
	})

	t.Run("empty storage class keeps the claim's class", func(t *testing.T) {
		mustUpgrade(t, "--set", "dvcr.storage.persistentVolumeClaim.storageClassName=")
		now := k.state()
		if now.pvc.UID != first.pvc.UID || now.pvc.Spec.StorageClassName == nil || *now.pvc.Spec.StorageClassName != "expandable" {
			t.Errorf("PVC uid %s class %v, want uid %s class expandable", now.pvc.UID, now.pvc.Spec.StorageClassName, first.pvc.UID)
		}
	})

	t.Run("uninstall keeps the pvc and a reinstall adopts it", func(t *testing.T) {
		if out, err := helm(t, kc, "uninstall", release, "--namespace", namespace); err != nil {
			t.Fatalf("helm uninstall: %v\n%s", err, out)
		}
		pvc := k.pvc()
		if pvc == nil || pvc.UID != first.pvc.UID {
			t.Fatalf("PVC gone or re-created after uninstall: %v", pvc)
		}
		if _, err := c.Clientset.AppsV1().Deployments(namespace).Get(context.Background(), release, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("Deployment still there after uninstall (err %v)", err)
		}
		out, err := helm(t, kc, "install", release, chartDir(t), "--namespace", namespace,
			"--set", "dvcr.storage.persistentVolumeClaim.size=2Gi")
		if err != nil {
			t.Fatalf("helm install over the kept PVC: %v\n%s", err, out)
		}
		if now := k.pvc(); now == nil || now.UID != first.pvc.UID {
			t.Errorf("PVC re-created by the reinstall")
		}
	})
}

// kube wraps the admin clientset for the lifecycle test.
type kube struct {
	t   *testing.T
	cs  kubernetes.Interface
	ext apiextensionsclient.Interface
}

func (k *kube) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

func (k *kube) storageClass(name string, expandable bool) {
	k.t.Helper()
	ctx, cancel := k.ctx()
	defer cancel()
	sc := &storagev1.StorageClass{
		ObjectMeta:           metav1.ObjectMeta{Name: name},
		Provisioner:          "csi.example.com",
		AllowVolumeExpansion: &expandable,
	}
	if _, err := k.cs.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{}); err != nil {
		k.t.Fatalf("creating StorageClass %s: %v", name, err)
	}
}

// bind marks the claim Bound with its requested capacity, as the volume
// controllers of a real cluster would.
func (k *kube) bind(pvc *corev1.PersistentVolumeClaim) {
	k.t.Helper()
	ctx, cancel := k.ctx()
	defer cancel()
	pvc = pvc.DeepCopy()
	pvc.Status.Phase = corev1.ClaimBound
	pvc.Status.AccessModes = pvc.Spec.AccessModes
	pvc.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: pvc.Spec.Resources.Requests[corev1.ResourceStorage]}
	if _, err := k.cs.CoreV1().PersistentVolumeClaims(pvc.Namespace).UpdateStatus(ctx, pvc, metav1.UpdateOptions{}); err != nil {
		k.t.Fatalf("binding PVC %s: %v", pvc.Name, err)
	}
}

func (k *kube) pvc() *corev1.PersistentVolumeClaim {
	k.t.Helper()
	ctx, cancel := k.ctx()
	defer cancel()
	pvc, err := k.cs.CoreV1().PersistentVolumeClaims(namespace).Get(ctx, release, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		k.t.Fatalf("getting PVC: %v", err)
	}
	return pvc
}

// access checks with a SubjectAccessReview whether user may do verb on
// resource in namespace default.
func (k *kube) access(user, group, res, verb string, want bool) {
	k.t.Helper()
	k.accessTo(user, group, res, "", "default", verb, want)
}

// accessTo is access for a subresource and a namespace.
func (k *kube) accessTo(user, group, res, sub, ns, verb string, want bool) {
	k.t.Helper()
	ctx, cancel := k.ctx()
	defer cancel()
	sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
		User:   user,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
		ResourceAttributes: &authzv1.ResourceAttributes{
			Group: group, Resource: res, Subresource: sub, Verb: verb, Namespace: ns,
		},
	}}
	got, err := k.cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		k.t.Fatalf("SubjectAccessReview: %v", err)
	}
	if got.Status.Allowed != want {
		k.t.Errorf("%s may %s %s.%s/%s in %q: %t, want %t (%s)", user, verb, res, group, sub, ns, got.Status.Allowed, want, got.Status.Reason)
	}
}

// state is what the release consists of at one point.
type state struct {
	pvc        *corev1.PersistentVolumeClaim
	secret     *corev1.Secret
	configMap  *corev1.ConfigMap
	deployment *appsv1.Deployment
}

func (k *kube) state() state {
	k.t.Helper()
	ctx, cancel := k.ctx()
	defer cancel()
	var s state
	var err error
	if s.pvc = k.pvc(); s.pvc == nil {
		k.t.Fatal("no PVC")
	}
	if s.secret, err = k.cs.CoreV1().Secrets(namespace).Get(ctx, release+"-auth", metav1.GetOptions{}); err != nil {
		k.t.Fatalf("getting the auth Secret: %v", err)
	}
	if s.configMap, err = k.cs.CoreV1().ConfigMaps(namespace).Get(ctx, release, metav1.GetOptions{}); err != nil {
		k.t.Fatalf("getting the ConfigMap: %v", err)
	}
	if s.deployment, err = k.cs.AppsV1().Deployments(namespace).Get(ctx, release, metav1.GetOptions{}); err != nil {
		k.t.Fatalf("getting the Deployment: %v", err)
	}
	if got, want := s.checksum("secret"), sha256Hex(s.secret.Data["htpasswd"]); got != want {
		k.t.Errorf("checksum/secret = %s, want the sha256 of the Secret's htpasswd %s", got, want)
	}
	if got, want := s.checksum("config"), sha256Hex([]byte(s.configMap.Data["config.yml"])); got != want {
		k.t.Errorf("checksum/config = %s, want the sha256 of the ConfigMap's config.yml %s", got, want)
	}
	return s
}

func (s state) checksum(name string) string {
	return s.deployment.Spec.Template.Annotations["checksum/"+name]
}

// verifies checks that the htpasswd Secret holds admin with password.
func (s state) verifies(t *testing.T, password string) {
	t.Helper()
	user, hash, _ := strings.Cut(strings.TrimSpace(string(s.secret.Data["htpasswd"])), ":")
	if user != "admin" {
		t.Errorf("htpasswd user = %q, want admin", user)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)); err != nil {
		t.Errorf("htpasswd does not verify %q: %v", password, err)
	}
}

// gcCheckAs impersonates the chart's service account: dvcr-cleaner gc check
// succeeds with its rights, and creating or deleting a VirtualImage is
// forbidden.
func gcCheckAs(t *testing.T, c *envtest.Cluster, adminKubeconfig, sa string) {
	t.Helper()
	kcfg, err := clientcmd.LoadFromFile(adminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, user := range kcfg.AuthInfos {
		user.Impersonate = sa
	}
	dir := t.TempDir()
	saKubeconfig := filepath.Join(dir, "sa.kubeconfig")
	if err := clientcmd.WriteToFile(*kcfg, saKubeconfig); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.yml")
	cfg := "version: 0.1\nstorage: {filesystem: {rootdirectory: " + filepath.Join(dir, "data") + "}}\nhttp: {addr: 127.0.0.1:0}\ndvcr: {adminSocket: " + filepath.Join(dir, "admin.sock") + "}\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	res := dvcrtest.Cleaner(t, "--config", cfgPath, "--kubeconfig", saKubeconfig, "gc", "check")
	if res.ExitCode != 0 || !strings.Contains(res.Stdout, "No images eligible for cleanup.") {
		t.Fatalf("gc check as %s: exit %d\n%s\n%s", sa, res.ExitCode, res.Stdout, res.Stderr)
	}
	restCfg := rest.CopyConfig(c.Config)
	restCfg.Impersonate = rest.ImpersonationConfig{UserName: sa, Groups: []string{"system:serviceaccounts", "system:authenticated"}}
	dyn := dynamic.NewForConfigOrDie(restCfg)
	vi := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": envtest.Group + "/" + envtest.Version, "kind": "VirtualImage",
		"metadata": map[string]any{"name": "x", "namespace": "default"},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := dyn.Resource(envtest.VIResource).Namespace("default").Create(ctx, vi, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("creating a VirtualImage as %s: %v, want Forbidden", sa, err)
	}
	if err := dyn.Resource(envtest.VIResource).Namespace("default").Delete(ctx, "x", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("deleting a VirtualImage as %s: %v, want Forbidden", sa, err)
	}
}
