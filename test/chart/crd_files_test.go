// The CRD files against the Go types of the provisioning API.

package chart

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/dvcr/dvcr/api/v1alpha2"
	"github.com/dvcr/dvcr/test/envtest"
)

// TestCRDFiles checks the CRDs of files/crds against the Go types the
// controller reads and writes: every field of api/v1alpha2 is in the
// schema with a matching type, and the schema declares no field the types do
// not have (the platform's fields are kept by preserve-unknown-fields, not
// declared), apart from the listed VirtualImage extras.
func TestCRDFiles(t *testing.T) {
	files := crdFiles(t)
	schemaOf := func(name string) *apiextensionsv1.JSONSchemaProps {
		crd := files[name]
		if crd == nil || len(crd.Spec.Versions) != 1 {
			t.Fatalf("CRD %s: want one version", name)
		}
		return crd.Spec.Versions[0].Schema.OpenAPIV3Schema
	}
	cvi := schemaOf(crdNames["clustervirtualimages.yaml"])
	vi := schemaOf(crdNames["virtualimages.yaml"])
	vd := schemaOf(crdNames["virtualdisks.yaml"])

	tests := []struct {
		name   string
		schema apiextensionsv1.JSONSchemaProps
		typ    reflect.Type
		// extra are schema paths the types do not have; missing are type
		// paths the schema does not have.
		extra, missing []string
	}{
		{"cvi spec", cvi.Properties["spec"], reflect.TypeFor[v1alpha2.ImageSpec](), nil, []string{".storage"}},
		{"vi spec", vi.Properties["spec"], reflect.TypeFor[v1alpha2.ImageSpec](), []string{".persistentVolumeClaim"}, nil},
		{"cvi status", cvi.Properties["status"], reflect.TypeFor[v1alpha2.ImageStatus](), nil, nil},
		{"vi status", vi.Properties["status"], reflect.TypeFor[v1alpha2.ImageStatus](), nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]string{}
			schemaFields("", tt.schema, got)
			want := map[string]string{}
			goFields("", tt.typ, want)
			for _, p := range tt.extra {
				if _, ok := got[p]; !ok {
					t.Errorf("schema has no %s", p)
				}
				delete(got, p)
			}
			for _, p := range tt.missing {
				delete(want, p)
			}
			if !reflect.DeepEqual(got, want) {
				for p, typ := range want {
					if got[p] != typ {
						t.Errorf("%s: schema type %q, Go type wants %q", p, got[p], typ)
					}
				}
				for p := range got {
					if _, ok := want[p]; !ok {
						t.Errorf("%s: in the schema, not in api/v1alpha2", p)
					}
				}
			}
			if !preserves(tt.schema) {
				t.Errorf("%s does not preserve unknown fields", tt.name)
			}
		})
	}

	t.Run("shared parts", func(t *testing.T) {
		if !reflect.DeepEqual(cvi.Properties["status"], vi.Properties["status"]) {
			t.Errorf("status schemas of cvi and vi differ")
		}
		if !reflect.DeepEqual(cvi.Properties["spec"].Properties["dataSource"], vi.Properties["spec"].Properties["dataSource"]) {
			t.Errorf("dataSource schemas of cvi and vi differ")
		}
		if !reflect.DeepEqual(cvi.XValidations, vi.XValidations) || len(cvi.XValidations) != 1 {
			t.Errorf("root validations: cvi %v, vi %v, want the one immutability rule in both", cvi.XValidations, vi.XValidations)
		}
		ds := vi.Properties["spec"].Properties["dataSource"]
		for _, block := range []string{"", "http", "containerImage", "objectRef"} {
			s := ds
			if block != "" {
				s = ds.Properties[block]
			}
			if !preserves(s) {
				t.Errorf("dataSource %s does not preserve unknown fields", block)
			}
		}
		st := vi.Properties["spec"].Properties["storage"]
		if st.Default == nil || string(st.Default.Raw) != `"ContainerRegistry"` {
			t.Errorf("vi spec.storage default = %v, want ContainerRegistry", st.Default)
		}
	})

	t.Run("vd", func(t *testing.T) {
		if vd.Properties["status"].Properties["phase"].Type != "string" || !preserves(vd.Properties["spec"]) {
			t.Errorf("vd schema: want an open spec and a status with a phase")
		}
	})

	t.Run("names and columns", func(t *testing.T) {
		imageColumns := []string{"Phase .status.phase string", "CDROM .status.cdrom boolean", "Progress .status.progress string",
			"StoredSize .status.size.stored string", "UnpackedSize .status.size.unpacked string",
			"Registry URL .status.target.registryURL string", "Age .metadata.creationTimestamp date"}
		want := map[string]struct {
			short, scope string
			columns      []string
		}{
			"clustervirtualimages.yaml": {"cvi", "Cluster", imageColumns},
			"virtualimages.yaml":        {"vi", "Namespaced", imageColumns},
			"virtualdisks.yaml":         {"vd", "Namespaced", []string{"Phase .status.phase string", "Age .metadata.creationTimestamp date"}},
		}
		for file, w := range want {
			crd := files[crdNames[file]]
			v := crd.Spec.Versions[0]
			if crd.Spec.Group != envtest.Group || v.Name != envtest.Version || !v.Served || !v.Storage {
				t.Errorf("%s: group %s version %s served %t storage %t", file, crd.Spec.Group, v.Name, v.Served, v.Storage)
			}
			if !slices.Equal(crd.Spec.Names.ShortNames, []string{w.short}) || string(crd.Spec.Scope) != w.scope {
				t.Errorf("%s: shortNames %v scope %s, want %s %s", file, crd.Spec.Names.ShortNames, crd.Spec.Scope, w.short, w.scope)
			}
			if !slices.Contains(crd.Spec.Names.Categories, "virtualization") {
				t.Errorf("%s: categories %v", file, crd.Spec.Names.Categories)
			}
			if v.Subresources == nil || v.Subresources.Status == nil {
				t.Errorf("%s: no status subresource", file)
			}
			var cols []string
			for _, c := range v.AdditionalPrinterColumns {
				cols = append(cols, c.Name+" "+c.JSONPath+" "+c.Type)
			}
			if !slices.Equal(cols, w.columns) {
				t.Errorf("%s: printer columns %q, want %q", file, cols, w.columns)
			}
		}
	})
}

// schemaFields collects the declared properties of s by path (".a.b",
// arrays as "[]") with their types.
func schemaFields(path string, s apiextensionsv1.JSONSchemaProps, out map[string]string) {
	if path != "" {
		out[path] = s.Type
	}
	for name, p := range s.Properties {
		schemaFields(path+"."+name, p, out)
	}
	if s.Items != nil && s.Items.Schema != nil {
		schemaFields(path+"[]", *s.Items.Schema, out)
	}
}

var timeType = reflect.TypeFor[metav1.Time]()

// goFields collects the JSON fields of t by path, with the schema type they
// need.
func goFields(path string, t reflect.Type, out map[string]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	typ := ""
	switch {
	case t == timeType:
		typ = "string"
	case t.Kind() == reflect.Struct:
		typ = "object"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		typ = "string"
	case t.Kind() == reflect.Slice:
		typ = "array"
	case t.Kind() == reflect.String:
		typ = "string"
	case t.Kind() == reflect.Bool:
		typ = "boolean"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		typ = "integer"
	}
	if path != "" {
		out[path] = typ
	}
	switch typ {
	case "object":
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			goFields(path+"."+name, f.Type, out)
		}
	case "array":
		goFields(path+"[]", t.Elem(), out)
	}
}

func preserves(s apiextensionsv1.JSONSchemaProps) bool {
	return s.XPreserveUnknownFields != nil && *s.XPreserveUnknownFields
}
