package console

import (
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/dvcr/dvcr/naming"
)

func TestCreateRequestObject(t *testing.T) {
	tests := []struct {
		name    string
		kind    naming.Kind
		req     CreateRequest
		wantErr error
		check   func(t *testing.T, obj *unstructured.Unstructured)
	}{
		{"HTTP cluster image", naming.KindCVI, CreateRequest{Name: "ubuntu", Source: "HTTP", URL: " https://x/u.qcow2 "}, nil, func(t *testing.T, obj *unstructured.Unstructured) {
			want(t, obj, "ClusterVirtualImage", "", "HTTP")
			if u, _, _ := unstructured.NestedString(obj.Object, "spec", "dataSource", "http", "url"); u != "https://x/u.qcow2" {
				t.Errorf("url %q", u)
			}
		}},
		{"container image in a project", naming.KindVI, CreateRequest{Name: "alpine", Namespace: "prj", Source: "ContainerImage", Image: "reg/alpine:3"}, nil, func(t *testing.T, obj *unstructured.Unstructured) {
			want(t, obj, "VirtualImage", "prj", "ContainerImage")
			if s, _, _ := unstructured.NestedString(obj.Object, "spec", "storage"); s != "ContainerRegistry" {
				t.Errorf("storage %q", s)
			}
		}},
		{"upload", naming.KindCVI, CreateRequest{Name: "up", Source: "Upload"}, nil, func(t *testing.T, obj *unstructured.Unstructured) {
			want(t, obj, "ClusterVirtualImage", "", "Upload")
		}},
		{"cluster image ignores a namespace", naming.KindCVI, CreateRequest{Name: "x", Namespace: "prj", Source: "Upload"}, nil, func(t *testing.T, obj *unstructured.Unstructured) {
			want(t, obj, "ClusterVirtualImage", "", "Upload")
		}},
		{"HTTP without URL", naming.KindCVI, CreateRequest{Name: "x", Source: "HTTP", URL: "  "}, ErrBadRequest, nil},
		{"container image without reference", naming.KindVI, CreateRequest{Name: "x", Source: "ContainerImage"}, ErrBadRequest, nil},
		{"unknown source", naming.KindCVI, CreateRequest{Name: "x", Source: "FTP"}, ErrBadRequest, nil},
		{"object reference is not offered", naming.KindCVI, CreateRequest{Name: "x", Source: "ObjectRef"}, ErrBadRequest, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj, err := tt.req.object(tt.kind)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, obj)
			}
		})
	}
}

func want(t *testing.T, obj *unstructured.Unstructured, kind, namespace, source string) {
	t.Helper()
	typ, _, _ := unstructured.NestedString(obj.Object, "spec", "dataSource", "type")
	if obj.GetKind() != kind || obj.GetAPIVersion() != "virtualization.deckhouse.io/v1alpha2" || obj.GetNamespace() != namespace || typ != source {
		t.Errorf("got %s %s ns %q source %q, want %s ns %q source %q", obj.GetAPIVersion(), obj.GetKind(), obj.GetNamespace(), typ, kind, namespace, source)
	}
}

func TestRowOf(t *testing.T) {
	obj := &unstructured.Unstructured{Object: map[string]any{
		"metadata": map[string]any{"name": "img", "uid": "u1", "creationTimestamp": "2026-12-01T10:00:00Z"},
		"spec":     map[string]any{"dataSource": map[string]any{"type": "HTTP", "http": map[string]any{"url": "https://x/y.iso"}}},
		"status": map[string]any{
			"phase": "Provisioning", "progress": "42.0%", "cdrom": true,
			"size":            map[string]any{"stored": "1.0GiB", "unpacked": "2.0GiB"},
			"downloadSpeed":   map[string]any{"current": "10MiB/s"},
			"imageUploadURLs": map[string]any{"inCluster": "http://dvcr/upload/t"},
			"unknownField":    "kept by the API server, ignored here",
		},
	}}
	row := rowOf(obj)
	if row.Name != "img" || row.Phase != "Provisioning" || row.Progress != "42.0%" || row.CDROM == nil || !*row.CDROM ||
		row.Stored != "1.0GiB" || row.Unpacked != "2.0GiB" || row.Speed != "10MiB/s" || row.SourceRef != "https://x/y.iso" ||
		uploadTarget(row) != "http://dvcr/upload/t" {
		t.Errorf("row %+v", row)
	}
	odd := &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": "odd"}, "status": map[string]any{"phase": 42}}}
	if r := rowOf(odd); r.Name != "odd" || r.Phase != "Unknown" {
		t.Errorf("a status the converter cannot read: %+v", r)
	}
}

func TestRedactToken(t *testing.T) {
	if got := redactToken("https://virt.example.com/upload/s3cr3t"); got != "https://virt.example.com/upload/…" {
		t.Errorf("redactToken: %q", got)
	}
}
