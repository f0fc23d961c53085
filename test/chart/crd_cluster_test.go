package chart

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"

	"github.com/dvcr/dvcr/api/v1alpha2"
	"github.com/dvcr/dvcr/test/envtest"
)

// TestCRDsInCluster installs the chart on an API server without the
// virtualization CRDs: the chart creates them (kept on uninstall and when
// crds.install is turned off), and the API server enforces their schema,
// the dataSource rules and the immutability of a Ready image's spec, while
// status updates through the subresource keep working.
func TestCRDsInCluster(t *testing.T) {
	helmBin(t)
	c := envtest.StartWithoutCRDs(t)
	kc := c.Kubeconfig(t)
	k := &kube{t: t, cs: c.Clientset, ext: apiextensionsclient.NewForConfigOrDie(c.Config)}
	install := func(t *testing.T, args ...string) {
		t.Helper()
		base := []string{"upgrade", "--install", release, chartDir(t), "--namespace", namespace,
			"--create-namespace", "--set", "dvcr.storage.type=Ephemeral"}
		if out, err := helm(t, kc, append(base, args...)...); err != nil {
			t.Fatalf("helm upgrade --install %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	checkKept := func(t *testing.T) {
		t.Helper()
		for _, name := range crdNames {
			crd := k.crd(name)
			if crd == nil {
				t.Fatalf("CRD %s missing", name)
			}
			if crd.Annotations["helm.sh/resource-policy"] != "keep" || crd.Annotations["meta.helm.sh/release-name"] != release {
				t.Errorf("CRD %s annotations = %v, want the release's and resource-policy keep", name, crd.Annotations)
			}
		}
	}

	t.Run("install creates the crds", func(t *testing.T) {
		install(t)
		checkKept(t)
		k.waitServed(c.Dynamic)
	})

	dyn := c.Dynamic
	c.CreateNamespace(t, "ns1")

	t.Run("validation", func(t *testing.T) {
		tests := []struct {
			name string
			gvr  schema.GroupVersionResource
			spec string // JSON
			want string // "" = accepted, otherwise a part of the error
		}{
			{"http", envtest.CVIResource, `{"dataSource":{"type":"HTTP","http":{"url":"https://example.com/a.qcow2","checksum":{"md5":"0123456789abcdef0123456789abcdef"}}}}`, ""},
			{"http without http", envtest.CVIResource, `{"dataSource":{"type":"HTTP"}}`, "dataSource.type HTTP needs dataSource.http with a url"},
			{"http without url", envtest.CVIResource, `{"dataSource":{"type":"HTTP","http":{}}}`, "spec.dataSource.http.url: Required value"},
			{"http with ftp url", envtest.CVIResource, `{"dataSource":{"type":"HTTP","http":{"url":"ftp://example.com/a"}}}`, "spec.dataSource.http.url"},
			{"http with containerImage", envtest.VIResource, `{"dataSource":{"type":"HTTP","http":{"url":"http://x/a"},"containerImage":{"image":"r/i"}}}`, "dataSource.containerImage is only allowed with dataSource.type ContainerImage"},
			{"bad md5", envtest.CVIResource, `{"dataSource":{"type":"HTTP","http":{"url":"http://x/a","checksum":{"md5":"xyz"}}}}`, "spec.dataSource.http.checksum.md5"},
			{"bad sha256", envtest.VIResource, `{"dataSource":{"type":"HTTP","http":{"url":"http://x/a","checksum":{"sha256":"0123456789abcdef0123456789abcdef"}}}}`, "spec.dataSource.http.checksum.sha256"},
			{"caBundle not base64", envtest.CVIResource, `{"dataSource":{"type":"HTTP","http":{"url":"https://x/a","caBundle":"not base64!"}}}`, "spec.dataSource.http.caBundle"},
			{"container image", envtest.VIResource, `{"dataSource":{"type":"ContainerImage","containerImage":{"image":"registry.example.com/disk:1","imagePullSecret":{"name":"pull"}}}}`, ""},
			{"container image without block", envtest.CVIResource, `{"dataSource":{"type":"ContainerImage"}}`, "dataSource.type ContainerImage needs dataSource.containerImage with an image"},
			{"container image without image", envtest.CVIResource, `{"dataSource":{"type":"ContainerImage","containerImage":{}}}`, "spec.dataSource.containerImage.image: Required value"},
			{"upload", envtest.CVIResource, `{"dataSource":{"type":"Upload"}}`, ""},
			{"upload with http", envtest.CVIResource, `{"dataSource":{"type":"Upload","http":{"url":"http://x/a"}}}`, "dataSource.http is only allowed with dataSource.type HTTP"},
			{"upload with objectRef", envtest.VIResource, `{"dataSource":{"type":"Upload","objectRef":{"kind":"VirtualImage","name":"a"}}}`, "dataSource.objectRef is only allowed with dataSource.type ObjectRef"},
			{"object ref", envtest.VIResource, `{"dataSource":{"type":"ObjectRef","objectRef":{"kind":"ClusterVirtualImage","name":"a"}}}`, ""},
			{"object ref without block", envtest.VIResource, `{"dataSource":{"type":"ObjectRef"}}`, "dataSource.type ObjectRef needs dataSource.objectRef with a kind and a name"},
			{"object ref of an unknown kind", envtest.VIResource, `{"dataSource":{"type":"ObjectRef","objectRef":{"kind":"Pod","name":"a"}}}`, "spec.dataSource.objectRef.kind"},
			{"cvi object ref to a vi without namespace", envtest.CVIResource, `{"dataSource":{"type":"ObjectRef","objectRef":{"kind":"VirtualImage","name":"a"}}}`, "dataSource.objectRef.namespace is required"},
			{"cvi object ref to a vi", envtest.CVIResource, `{"dataSource":{"type":"ObjectRef","objectRef":{"kind":"VirtualImage","name":"a","namespace":"ns1"}}}`, ""},
			{"unknown type", envtest.CVIResource, `{"dataSource":{"type":"FTP"}}`, "spec.dataSource.type"},
			{"no data source", envtest.CVIResource, `{}`, "spec.dataSource: Required value"},
			{"vi storage pvc", envtest.VIResource, `{"storage":"PersistentVolumeClaim","persistentVolumeClaim":{"storageClassName":"x","size":"10Gi"},"dataSource":{"type":"Upload"}}`, ""},
			{"vi storage unknown", envtest.VIResource, `{"storage":"Disk","dataSource":{"type":"Upload"}}`, "spec.storage"},
			{"cvi storage is not declared", envtest.CVIResource, `{"storage":"ContainerRegistry","dataSource":{"type":"Upload"}}`, ""},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var spec map[string]any
				if err := json.Unmarshal([]byte(tt.spec), &spec); err != nil {
					t.Fatal(err)
				}
				_, err := createImage(dyn, tt.gvr, "v"+string(rune('a'+i)), spec)
				switch {
				case tt.want == "" && err != nil:
					t.Errorf("rejected: %v", err)
				case tt.want != "" && err == nil:
					t.Errorf("accepted, want an error containing %q", tt.want)
				case tt.want != "" && (!apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tt.want)):
					t.Errorf("error = %v, want Invalid containing %q", err, tt.want)
				}
			})
		}
	})

	t.Run("vi storage defaults to ContainerRegistry", func(t *testing.T) {
		obj, err := createImage(dyn, envtest.VIResource, "defaulted", map[string]any{"dataSource": map[string]any{"type": "Upload"}})
		if err != nil {
			t.Fatal(err)
		}
		if got, _, _ := unstructured.NestedString(obj.Object, "spec", "storage"); got != v1alpha2.StorageContainerRegistry {
			t.Errorf("spec.storage = %q, want ContainerRegistry", got)
		}
	})

	t.Run("every field of the go types round-trips", func(t *testing.T) {
		for _, gvr := range []schema.GroupVersionResource{envtest.CVIResource, envtest.VIResource} {
			roundTrip(t, dyn, gvr)
		}
	})

	t.Run("spec immutable once ready", func(t *testing.T) {
		for _, gvr := range []schema.GroupVersionResource{envtest.CVIResource, envtest.VIResource} {
			t.Run(gvr.Resource, func(t *testing.T) {
				immutability(t, dyn, gvr)
			})
		}
	})

	t.Run("uninstall keeps the crds and the images", func(t *testing.T) {
		if out, err := helm(t, kc, "uninstall", release, "--namespace", namespace); err != nil {
			t.Fatalf("helm uninstall: %v\n%s", err, out)
		}
		for _, name := range crdNames {
			if k.crd(name) == nil {
				t.Errorf("CRD %s deleted by uninstall", name)
			}
		}
		ctx, cancel := k.ctx()
		defer cancel()
		if _, err := dyn.Resource(envtest.CVIResource).Get(ctx, "ready-clustervirtualimages", metav1.GetOptions{}); err != nil {
			t.Errorf("image gone after uninstall: %v", err)
		}
	})

	t.Run("reinstall adopts the kept crds", func(t *testing.T) {
		install(t)
		checkKept(t)
	})

	t.Run("crds.install=false keeps them", func(t *testing.T) {
		install(t, "--set", "crds.install=false")
		for _, name := range crdNames {
			if k.crd(name) == nil {
				t.Errorf("CRD %s deleted when crds.install was turned off", name)
			}
		}
	})
}

func createImage(dyn dynamic.Interface, gvr schema.GroupVersionResource, name string, spec map[string]any) (*unstructured.Unstructured, error) {
	kind := "ClusterVirtualImage"
	meta := map[string]any{"name": name}
	var client dynamic.ResourceInterface = dyn.Resource(gvr)
	if gvr == envtest.VIResource {
		kind = "VirtualImage"
		meta["namespace"] = "ns1"
		client = dyn.Resource(gvr).Namespace("ns1")
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": envtest.Group + "/" + envtest.Version, "kind": kind, "metadata": meta, "spec": spec,
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return client.Create(ctx, obj, metav1.CreateOptions{})
}

func imageClient(dyn dynamic.Interface, gvr schema.GroupVersionResource) dynamic.ResourceInterface {
	if gvr == envtest.VIResource {
		return dyn.Resource(gvr).Namespace("ns1")
	}
	return dyn.Resource(gvr)
}

// roundTrip writes an image with every field of api/v1alpha2 set
// (the spec by create, the status through /status) plus fields DVCR does
// not know, and reads back exactly that: nothing is pruned or refused.
func roundTrip(t *testing.T, dyn dynamic.Interface, gvr schema.GroupVersionResource) {
	t.Helper()
	spec := v1alpha2.ImageSpec{DataSource: v1alpha2.DataSource{
		Type: v1alpha2.DataSourceContainerImage,
		ContainerImage: &v1alpha2.ContainerImage{
			Image:           "registry.example.com/disks/ubuntu:24.04",
			ImagePullSecret: &v1alpha2.ImagePullSecret{Name: "pull", Namespace: "ns1"},
			CABundle:        []byte("-----BEGIN CERTIFICATE-----\n...\n"),
		},
	}}
	if gvr == envtest.VIResource {
		spec.Storage = v1alpha2.StorageContainerRegistry
	}
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	cdrom := true
	status := v1alpha2.ImageStatus{
		Phase:           v1alpha2.PhaseProvisioning,
		Progress:        "42.5%",
		Size:            &v1alpha2.ImageSize{Stored: "1.2GiB", StoredBytes: "1288490188", Unpacked: "10GiB", UnpackedBytes: "10737418240"},
		Format:          "qcow2",
		CDROM:           &cdrom,
		Target:          &v1alpha2.Target{RegistryURL: "dvcr.d8-virtualization.svc/cvi/x:latest"},
		ImageUploadURLs: &v1alpha2.UploadURLs{External: "https://u.example.com/upload/t", InCluster: "http://dvcr/upload/t"},
		DownloadSpeed:   &v1alpha2.DownloadSpeed{Avg: "10MiB/s", AvgBytes: "10485760", Current: "12MiB/s", CurrentBytes: "12582912"},
		ImportDuration:  "1m30s",
		SourceUID:       "0f3a",
		Conditions: []metav1.Condition{
			{Type: v1alpha2.ConditionDatasourceReady, Status: metav1.ConditionTrue, Reason: v1alpha2.ReasonSourceAvailable, Message: "", LastTransitionTime: now, ObservedGeneration: 1},
			{Type: v1alpha2.ConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha2.ReasonProvisioning, Message: "importing", LastTransitionTime: now, ObservedGeneration: 1},
		},
		ObservedGeneration: 1,
	}
	name := "roundtrip-" + gvr.Resource
	specMap := toMap(t, spec)
	specMap["platformField"] = map[string]any{"kept": true}
	specMap["dataSource"].(map[string]any)["containerImage"].(map[string]any)["platformOnly"] = "x"
	obj, err := createImage(dyn, gvr, name, specMap)
	if err != nil {
		t.Fatalf("creating %s: %v", name, err)
	}
	statusMap := toMap(t, status)
	statusMap["platformStatus"] = "kept"
	obj.Object["status"] = statusMap
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := imageClient(dyn, gvr).UpdateStatus(ctx, obj, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("updating the status of %s: %v", name, err)
	}
	got, err := imageClient(dyn, gvr).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Spec   v1alpha2.ImageSpec   `json:"spec"`
		Status v1alpha2.ImageStatus `json:"status"`
	}
	data, _ := json.Marshal(got.Object)
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Spec, spec) {
		t.Errorf("%s: spec read back\n%+v\nwant\n%+v", gvr.Resource, back.Spec, spec)
	}
	if !reflect.DeepEqual(back.Status, status) {
		t.Errorf("%s: status read back\n%+v\nwant\n%+v", gvr.Resource, back.Status, status)
	}
	for _, path := range [][]string{{"spec", "platformField", "kept"}, {"spec", "dataSource", "containerImage", "platformOnly"}, {"status", "platformStatus"}} {
		if _, ok, _ := unstructured.NestedFieldNoCopy(got.Object, path...); !ok {
			t.Errorf("%s: unknown field %s pruned", gvr.Resource, strings.Join(path, "."))
		}
	}
}

func toMap(t *testing.T, v any) map[string]any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// immutability: before Ready a spec change is accepted; the status
// subresource sets Ready and keeps updating it; then a spec change is
// refused with the rule's message while metadata changes still pass.
func immutability(t *testing.T, dyn dynamic.Interface, gvr schema.GroupVersionResource) {
	client := imageClient(dyn, gvr)
	name := "ready-" + gvr.Resource
	httpSpec := func(url string) map[string]any {
		return map[string]any{"dataSource": map[string]any{"type": "HTTP", "http": map[string]any{"url": url}}}
	}
	if _, err := createImage(dyn, gvr, name, httpSpec("https://example.com/a.img")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	get := func() *unstructured.Unstructured {
		t.Helper()
		obj, err := client.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return obj
	}
	steps := []struct {
		name   string
		change func(obj *unstructured.Unstructured) (*unstructured.Unstructured, error)
		want   string // "" = accepted
	}{
		{"spec change while provisioning", func(obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
			obj.Object["status"] = map[string]any{"phase": "Provisioning"}
			if _, err := client.UpdateStatus(ctx, obj, metav1.UpdateOptions{}); err != nil {
				return nil, err
			}
			obj = get()
			obj.Object["spec"] = httpSpec("https://example.com/b.img")
			return client.Update(ctx, obj, metav1.UpdateOptions{})
		}, ""},
		{"status Ready through the subresource", func(obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
			obj.Object["status"] = map[string]any{"phase": "Ready", "progress": "100%", "cdrom": false}
			return client.UpdateStatus(ctx, obj, metav1.UpdateOptions{})
		}, ""},
		{"status update while Ready", func(obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
			obj.Object["status"].(map[string]any)["format"] = "raw"
			return client.UpdateStatus(ctx, obj, metav1.UpdateOptions{})
		}, ""},
		{"spec change while Ready", func(obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
			obj.Object["spec"] = httpSpec("https://example.com/c.img")
			return client.Update(ctx, obj, metav1.UpdateOptions{})
		}, "spec is immutable once the image is Ready"},
		{"spec patch while Ready", func(obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
			patch := []byte(`{"spec":{"dataSource":{"http":{"checksum":{"md5":"0123456789abcdef0123456789abcdef"}}}}}`)
			return client.Patch(ctx, name, "application/merge-patch+json", patch, metav1.PatchOptions{})
		}, "spec is immutable once the image is Ready"},
		{"label change while Ready", func(obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
			obj.SetLabels(map[string]string{"team": "a"})
			return client.Update(ctx, obj, metav1.UpdateOptions{})
		}, ""},
		{"status away from Ready", func(obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
			obj.Object["status"].(map[string]any)["phase"] = "Failed"
			return client.UpdateStatus(ctx, obj, metav1.UpdateOptions{})
		}, ""},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			_, err := st.change(get())
			switch {
			case st.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case st.want != "" && (err == nil || !strings.Contains(err.Error(), st.want)):
				t.Fatalf("error = %v, want one containing %q", err, st.want)
			}
		})
	}
	if url, _, _ := unstructured.NestedString(get().Object, "spec", "dataSource", "http", "url"); url != "https://example.com/b.img" {
		t.Errorf("spec.dataSource.http.url = %q, want the one before Ready", url)
	}
}

func (k *kube) crd(name string) *apiextensionsv1.CustomResourceDefinition {
	k.t.Helper()
	ctx, cancel := k.ctx()
	defer cancel()
	crd, err := k.ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		k.t.Fatalf("getting CRD %s: %v", name, err)
	}
	return crd
}

// waitServed waits until the custom resources of the new CRDs can be listed.
func (k *kube) waitServed(dyn dynamic.Interface) {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, gvr := range []schema.GroupVersionResource{envtest.CVIResource, envtest.VIResource, envtest.VDResource} {
		err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			_, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{Limit: 1})
			return err == nil, nil
		})
		if err != nil {
			k.t.Fatalf("%s not served: %v", gvr.Resource, err)
		}
	}
}
