package chart

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"github.com/dvcr/dvcr/config"
	"github.com/dvcr/dvcr/test/envtest"
)

// provisioningRules are the ClusterRole rules the provisioning controller
// gets on top of the GC's, sorted as checkRBAC compares them.
var provisioningRules = []rbacRule{
	{
		APIGroups: []string{"virtualization.deckhouse.io"},
		Resources: []string{"clustervirtualimages", "virtualimages"},
		Verbs:     []string{"watch"},
	},
	{
		APIGroups: []string{"virtualization.deckhouse.io"},
		Resources: []string{"clustervirtualimages/status", "virtualimages/status"},
		Verbs:     []string{"patch", "update"},
	},
	{
		APIGroups: []string{"", "events.k8s.io"},
		Resources: []string{"events"},
		Verbs:     []string{"create", "patch"},
	},
	{
		APIGroups: []string{""},
		Resources: []string{"secrets"},
		Verbs:     []string{"get"},
	},
}

// leaseRule is the only rule of the Role in the release namespace: leader
// election.
var leaseRule = rbacRule{
	APIGroups: []string{"coordination.k8s.io"},
	Resources: []string{"leases"},
	Verbs:     []string{"create", "get", "update"},
}

// crdNames are the CRDs the chart ships, by file.
var crdNames = map[string]string{
	"clustervirtualimages.yaml": "clustervirtualimages.virtualization.deckhouse.io",
	"virtualimages.yaml":        "virtualimages.virtualization.deckhouse.io",
	"virtualdisks.yaml":         "virtualdisks.virtualization.deckhouse.io",
}

// checkLeaseRole checks the Role and RoleBinding of leader election: present
// with exactly the lease rule when provisioning is on, absent otherwise.
func checkLeaseRole(t *testing.T, r *rendered, provisioning bool) {
	t.Helper()
	if !provisioning {
		if r.Role != nil || r.RoleBinding != nil {
			t.Errorf("Role/RoleBinding rendered with provisioning off")
		}
		return
	}
	if r.Role == nil || r.RoleBinding == nil {
		t.Fatal("no Role/RoleBinding for leader election")
	}
	var got []rbacRule
	for _, rule := range r.Role.Rules {
		got = append(got, rbacRule{APIGroups: sorted(rule.APIGroups), Resources: sorted(rule.Resources),
			Verbs: sorted(rule.Verbs), ResourceNames: rule.ResourceNames, NonResourceURLs: rule.NonResourceURLs})
	}
	if !reflect.DeepEqual(got, []rbacRule{leaseRule}) {
		t.Errorf("Role rules = %+v, want exactly %+v", got, leaseRule)
	}
	b := r.RoleBinding
	if b.RoleRef.Kind != "Role" || b.RoleRef.Name != r.Role.Name {
		t.Errorf("RoleBinding roleRef = %+v, want Role %s", b.RoleRef, r.Role.Name)
	}
	if len(b.Subjects) != 1 || b.Subjects[0].Kind != "ServiceAccount" ||
		b.Subjects[0].Name != r.Deployment.Spec.Template.Spec.ServiceAccountName || b.Subjects[0].Namespace != namespace {
		t.Errorf("RoleBinding subjects = %+v, want the pod's ServiceAccount", b.Subjects)
	}
}

// checkEnv checks POD_NAME and POD_NAMESPACE from the downward API, and no
// other variable.
func checkEnv(t *testing.T, r *rendered) {
	t.Helper()
	want := map[string]string{"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}
	env := r.container(t).Env
	if len(env) != len(want) {
		t.Errorf("env = %+v, want POD_NAME and POD_NAMESPACE", env)
	}
	for _, e := range env {
		if e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != want[e.Name] || e.Value != "" {
			t.Errorf("env %s = %+v, want fieldRef %q", e.Name, e, want[e.Name])
		}
	}
}

// checkProvisioning compares dvcr.provisioning of config.yml, as `dvcr
// serve` parses it, with want, and checks every key is written explicitly.
func checkProvisioning(t *testing.T, r *rendered, want config.Provisioning) {
	t.Helper()
	if got := r.Config.DVCR.Provisioning; got != want {
		t.Errorf("dvcr.provisioning = %+v, want %+v", got, want)
	}
	for _, keys := range [][]string{
		{"enabled"}, {"concurrency"}, {"registryURL"},
		{"upload", "inClusterURL"}, {"upload", "externalURL"}, {"upload", "timeout"},
	} {
		if r.configValue(t, append([]string{"dvcr", "provisioning"}, keys...)...) == nil {
			t.Errorf("config.yml has no dvcr.provisioning.%s", strings.Join(keys, "."))
		}
	}
}

// checkCRDs checks the rendered CRDs: exactly the three of files/crds, with
// their spec unchanged by the template, the chart's labels and
// helm.sh/resource-policy: keep.
func checkCRDs(t *testing.T, r *rendered) {
	t.Helper()
	files := crdFiles(t)
	if len(r.CRDs) != len(files) {
		t.Errorf("rendered %d CRDs, want %d", len(r.CRDs), len(files))
	}
	for name, file := range files {
		got, ok := r.CRDs[name]
		if !ok {
			t.Errorf("CRD %s not rendered", name)
			continue
		}
		if !reflect.DeepEqual(got.Spec, file.Spec) {
			t.Errorf("CRD %s: rendered spec differs from files/crds", name)
		}
		if got.Annotations["helm.sh/resource-policy"] != "keep" {
			t.Errorf("CRD %s annotations = %v, want helm.sh/resource-policy: keep", name, got.Annotations)
		}
		if got.Labels["app.kubernetes.io/managed-by"] != "Helm" || got.Labels["app.kubernetes.io/instance"] != release {
			t.Errorf("CRD %s labels = %v", name, got.Labels)
		}
	}
}

// crdFiles decodes charts/dvcr/files/crds strictly, by CRD name.
func crdFiles(t testing.TB) map[string]*apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	dir := filepath.Join(repoRoot(t), filepath.FromSlash(envtest.CRDDir))
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*apiextensionsv1.CustomResourceDefinition{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		crd := new(apiextensionsv1.CustomResourceDefinition)
		if err := yaml.UnmarshalStrict(data, crd); err != nil {
			t.Fatalf("%s does not decode strictly into a CustomResourceDefinition: %v", e.Name(), err)
		}
		if want := crdNames[e.Name()]; crd.Name != want {
			t.Errorf("%s holds CRD %q, want %q", e.Name(), crd.Name, want)
		}
		out[crd.Name] = crd
	}
	if len(out) != len(crdNames) {
		t.Errorf("files/crds has %d CRDs, want %d", len(out), len(crdNames))
	}
	return out
}

// provisioningValueTests are the TestValues cases of the provisioning
// values, the Ingress and crds.install.
var provisioningValueTests = []struct {
	name  string
	args  []string
	check func(t *testing.T, r *rendered)
}{
	{
		name: "provisioning off",
		args: []string{"--set", "dvcr.provisioning.enabled=false"},
		check: func(t *testing.T, r *rendered) {
			if r.Config.DVCR.Provisioning.Enabled {
				t.Errorf("provisioning.enabled = true")
			}
			checkRBAC(t, r, false)
			if r.Ingress != nil {
				t.Errorf("Ingress rendered")
			}
		},
	},
	{
		name: "provisioning settings",
		args: []string{
			"--set", "dvcr.provisioning.concurrency=16",
			"--set", "dvcr.provisioning.registryURL=dvcr.example.com:5000",
			"--set", "dvcr.provisioning.upload.inClusterURL=http://dvcr-upload.svc:8080/upload/",
			"--set", "dvcr.provisioning.upload.externalURL=https://upload.example.com/dvcr/upload",
			"--set", "dvcr.provisioning.upload.timeout=30m",
		},
		check: func(t *testing.T, r *rendered) {
			checkProvisioning(t, r, config.Provisioning{
				Enabled:     true,
				Concurrency: 16,
				RegistryURL: "dvcr.example.com:5000",
				Upload: config.Upload{
					InClusterURL: "http://dvcr-upload.svc:8080/upload",
					ExternalURL:  "https://upload.example.com/dvcr/upload",
					Timeout:      30 * time.Minute,
				},
			})
		},
	},
	{
		name: "ingress with tls",
		args: []string{
			"--set", "dvcr.provisioning.upload.ingress.enabled=true",
			"--set", "dvcr.provisioning.upload.ingress.host=upload.example.com",
			"--set", "dvcr.provisioning.upload.ingress.className=nginx",
			"--set", "dvcr.provisioning.upload.ingress.tls.secretName=upload-tls",
		},
		check: func(t *testing.T, r *rendered) {
			checkIngress(t, r, "upload.example.com", "nginx", "upload-tls", "http")
			if got := r.Config.DVCR.Provisioning.Upload.ExternalURL; got != "https://upload.example.com/upload" {
				t.Errorf("upload.externalURL = %q, want https://upload.example.com/upload", got)
			}
			a := r.Ingress.Annotations
			if a["nginx.ingress.kubernetes.io/proxy-body-size"] != "0" || a["nginx.ingress.kubernetes.io/proxy-request-buffering"] != "off" {
				t.Errorf("annotations = %v, want the unlimited, unbuffered body of ingress-nginx", a)
			}
		},
	},
	{
		name: "ingress without tls, given external url, registry tls, annotation dropped",
		args: []string{
			"--set", "dvcr.provisioning.upload.ingress.enabled=true",
			"--set", "dvcr.provisioning.upload.ingress.host=upload.example.com",
			"--set", "dvcr.provisioning.upload.ingress.annotations.nginx\\.ingress\\.kubernetes\\.io/proxy-body-size=null",
			"--set", "dvcr.provisioning.upload.ingress.annotations.example\\.com/x=y",
			"--set", "dvcr.tls.enabled=true", "--set", "dvcr.tls.secretName=dvcr-tls",
		},
		check: func(t *testing.T, r *rendered) {
			checkIngress(t, r, "upload.example.com", "", "", "https")
			if got := r.Config.DVCR.Provisioning.Upload.ExternalURL; got != "http://upload.example.com/upload" {
				t.Errorf("upload.externalURL = %q, want http://upload.example.com/upload", got)
			}
			want := map[string]string{"nginx.ingress.kubernetes.io/proxy-request-buffering": "off", "example.com/x": "y"}
			if !reflect.DeepEqual(r.Ingress.Annotations, want) {
				t.Errorf("annotations = %v, want %v", r.Ingress.Annotations, want)
			}
		},
	},
	{
		name: "external url wins over the ingress",
		args: []string{
			"--set", "dvcr.provisioning.upload.ingress.enabled=true",
			"--set", "dvcr.provisioning.upload.ingress.host=upload.example.com",
			"--set", "dvcr.provisioning.upload.externalURL=https://images.example.com/upload",
		},
		check: func(t *testing.T, r *rendered) {
			if got := r.Config.DVCR.Provisioning.Upload.ExternalURL; got != "https://images.example.com/upload" {
				t.Errorf("upload.externalURL = %q", got)
			}
		},
	},
	{
		name: "crds not installed",
		args: []string{"--set", "crds.install=false"},
		check: func(t *testing.T, r *rendered) {
			if len(r.CRDs) != 0 {
				t.Errorf("CRDs rendered with crds.install=false: %v", slices.Collect(mapKeys(r.CRDs)))
			}
		},
	},
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// checkIngress checks the Ingress routes host/upload (Prefix) to the
// Service's registry port, and nothing else.
func checkIngress(t *testing.T, r *rendered, host, class, tlsSecret, port string) {
	t.Helper()
	in := r.Ingress
	if in == nil {
		t.Fatal("no Ingress")
	}
	if got := ptrString(in.Spec.IngressClassName); got != class {
		t.Errorf("ingressClassName = %q, want %q", got, class)
	}
	if tlsSecret == "" {
		if len(in.Spec.TLS) != 0 {
			t.Errorf("tls = %+v, want none", in.Spec.TLS)
		}
	} else if len(in.Spec.TLS) != 1 || in.Spec.TLS[0].SecretName != tlsSecret || !slices.Equal(in.Spec.TLS[0].Hosts, []string{host}) {
		t.Errorf("tls = %+v, want %s for %s", in.Spec.TLS, tlsSecret, host)
	}
	if len(in.Spec.Rules) != 1 || in.Spec.Rules[0].Host != host || in.Spec.Rules[0].HTTP == nil || len(in.Spec.Rules[0].HTTP.Paths) != 1 {
		t.Fatalf("rules = %+v, want one rule for %s with one path", in.Spec.Rules, host)
	}
	p := in.Spec.Rules[0].HTTP.Paths[0]
	if p.Path != "/upload" || p.PathType == nil || *p.PathType != networkingv1.PathTypePrefix {
		t.Errorf("path = %s (%v), want /upload Prefix", p.Path, p.PathType)
	}
	svc := p.Backend.Service
	if svc == nil || svc.Name != r.Service.Name || svc.Port.Name != port {
		t.Errorf("backend = %+v, want Service %s port %s", p.Backend, r.Service.Name, port)
	}
	var ports []string
	for _, sp := range r.Service.Spec.Ports {
		ports = append(ports, sp.Name)
	}
	if !slices.Contains(ports, port) {
		t.Errorf("Service has no port %s (%v)", port, ports)
	}
}

func ptrString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
