package chart

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"sigs.k8s.io/yaml"

	"github.com/dvcr/dvcr/config"
)

// rendered is one `helm template` of the chart, decoded.
type rendered struct {
	Manifest string
	Objects  []object

	Deployment         *appsv1.Deployment
	ConfigMap          *corev1.ConfigMap
	Service            *corev1.Service
	ServiceAccount     *corev1.ServiceAccount
	ClusterRole        *rbacv1.ClusterRole
	ClusterRoleBinding *rbacv1.ClusterRoleBinding
	// Optional objects: nil when not rendered.
	PVC            *corev1.PersistentVolumeClaim
	Secret         *corev1.Secret // htpasswd
	ServiceMonitor map[string]any
	PrometheusRule map[string]any
	Role           *rbacv1.Role
	RoleBinding    *rbacv1.RoleBinding
	Ingress        *networkingv1.Ingress
	PDB            *policyv1.PodDisruptionBudget
	HTTPSecret     *corev1.Secret // http.secret of replicas
	// CRDs by name.
	CRDs map[string]*apiextensionsv1.CustomResourceDefinition

	// Config is config.yml of the ConfigMap as `dvcr serve` loads it.
	Config *config.Config
}

// namespaced and clusterScoped are every kind the chart may render.
var (
	namespaced = map[string]bool{
		"Deployment": true, "ConfigMap": true, "Service": true, "ServiceAccount": true,
		"PersistentVolumeClaim": true, "Secret": true, "ServiceMonitor": true, "PrometheusRule": true,
		"Role": true, "RoleBinding": true, "Ingress": true, "PodDisruptionBudget": true,
	}
	clusterScoped = map[string]bool{"ClusterRole": true, "ClusterRoleBinding": true, "CustomResourceDefinition": true}
)

// render runs `helm template` with args and decodes the result. Every object
// must be of a known kind, decode strictly into its API type, and be in the
// release namespace unless cluster-scoped; config.yml must load as `dvcr
// serve` loads it.
func render(t testing.TB, args ...string) *rendered {
	t.Helper()
	r := &rendered{Manifest: template(t, args...)}
	r.Objects = parseManifest(t, r.Manifest)
	for _, o := range r.Objects {
		meta, _ := o.Generic["metadata"].(map[string]any)
		ns, _ := meta["namespace"].(string)
		switch {
		case namespaced[o.Kind]:
			if ns != namespace {
				t.Errorf("%s %s: metadata.namespace = %q, want %q", o.Kind, o.Name, ns, namespace)
			}
		case clusterScoped[o.Kind]:
			if ns != "" {
				t.Errorf("%s %s is cluster-scoped but has metadata.namespace %q", o.Kind, o.Name, ns)
			}
		default:
			t.Errorf("unexpected kind %s (%s) in the render", o.Kind, o.Name)
		}
	}
	r.Deployment = decode[appsv1.Deployment](t, r.Objects, "Deployment")
	r.ConfigMap = decode[corev1.ConfigMap](t, r.Objects, "ConfigMap")
	r.Service = decode[corev1.Service](t, r.Objects, "Service")
	r.ServiceAccount = decode[corev1.ServiceAccount](t, r.Objects, "ServiceAccount")
	r.ClusterRole = decode[rbacv1.ClusterRole](t, r.Objects, "ClusterRole")
	r.ClusterRoleBinding = decode[rbacv1.ClusterRoleBinding](t, r.Objects, "ClusterRoleBinding")
	if has(r.Objects, "PersistentVolumeClaim") {
		r.PVC = decode[corev1.PersistentVolumeClaim](t, r.Objects, "PersistentVolumeClaim")
	}
	for _, o := range r.Objects {
		if o.Kind != "Secret" {
			continue
		}
		secret := decode[corev1.Secret](t, []object{o}, "Secret")
		if strings.HasSuffix(o.Name, "-http") {
			r.HTTPSecret = secret
		} else {
			r.Secret = secret
		}
	}
	if has(r.Objects, "PodDisruptionBudget") {
		r.PDB = decode[policyv1.PodDisruptionBudget](t, r.Objects, "PodDisruptionBudget")
	}
	if has(r.Objects, "ServiceMonitor") {
		r.ServiceMonitor = find(t, r.Objects, "ServiceMonitor").Generic
	}
	if has(r.Objects, "PrometheusRule") {
		r.PrometheusRule = find(t, r.Objects, "PrometheusRule").Generic
	}
	if has(r.Objects, "Role") {
		r.Role = decode[rbacv1.Role](t, r.Objects, "Role")
	}
	if has(r.Objects, "RoleBinding") {
		r.RoleBinding = decode[rbacv1.RoleBinding](t, r.Objects, "RoleBinding")
	}
	if has(r.Objects, "Ingress") {
		r.Ingress = decode[networkingv1.Ingress](t, r.Objects, "Ingress")
	}
	r.CRDs = map[string]*apiextensionsv1.CustomResourceDefinition{}
	for _, o := range r.Objects {
		if o.Kind != "CustomResourceDefinition" {
			continue
		}
		crd := new(apiextensionsv1.CustomResourceDefinition)
		if err := yaml.UnmarshalStrict(o.Raw, crd); err != nil {
			t.Fatalf("CustomResourceDefinition %s does not decode strictly: %v", o.Name, err)
		}
		r.CRDs[o.Name] = crd
	}
	data, ok := r.ConfigMap.Data["config.yml"]
	if !ok {
		t.Fatalf("ConfigMap %s has no config.yml (keys: %v)", r.ConfigMap.Name, r.ConfigMap.Data)
	}
	r.setRegistryEnv(t)
	cfg, err := config.Parse("ConfigMap "+r.ConfigMap.Name, []byte(data))
	if err != nil {
		t.Fatalf("config.yml of the ConfigMap does not load as `dvcr serve` loads it: %v\n%s", err, data)
	}
	r.Config = cfg
	return r
}

// setRegistryEnv sets the container's REGISTRY_* variables (distribution's
// overrides of config.yml) in the test's environment, as the pod has them:
// from the rendered Secrets, or a placeholder for a Secret the chart does
// not make.
func (r *rendered) setRegistryEnv(t testing.TB) {
	t.Helper()
	for _, env := range r.container(t).Env {
		if !strings.HasPrefix(env.Name, "REGISTRY_") {
			continue
		}
		value := env.Value
		if ref := env.ValueFrom; ref != nil && ref.SecretKeyRef != nil {
			value = "from-secret-" + ref.SecretKeyRef.Name
			for _, o := range r.Objects {
				if o.Kind == "Secret" && o.Name == ref.SecretKeyRef.Name {
					value = string(decode[corev1.Secret](t, []object{o}, "Secret").Data[ref.SecretKeyRef.Key])
				}
			}
		}
		t.Setenv(env.Name, value)
	}
}

// container is the dvcr container of the Deployment.
func (r *rendered) container(t testing.TB) *corev1.Container {
	t.Helper()
	cs := r.Deployment.Spec.Template.Spec.Containers
	if len(cs) != 1 || cs[0].Name != "dvcr" {
		t.Fatalf("want one container named dvcr, got %d: %+v", len(cs), cs)
	}
	return &cs[0]
}

// volume is the pod volume name.
func (r *rendered) volume(t testing.TB, name string) *corev1.Volume {
	t.Helper()
	for i, v := range r.Deployment.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return &r.Deployment.Spec.Template.Spec.Volumes[i]
		}
	}
	t.Fatalf("pod has no volume %q", name)
	return nil
}

// mountPath is where the dvcr container mounts volume name, "" if nowhere.
func (r *rendered) mountPath(t testing.TB, name string) string {
	t.Helper()
	for _, m := range r.container(t).VolumeMounts {
		if m.Name == name {
			return m.MountPath
		}
	}
	return ""
}

// configValue walks the raw config.yml of the ConfigMap by keys.
func (r *rendered) configValue(t testing.TB, keys ...string) any {
	t.Helper()
	var doc map[string]any
	if err := yamlUnmarshal([]byte(r.ConfigMap.Data["config.yml"]), &doc); err != nil {
		t.Fatalf("config.yml: %v", err)
	}
	var cur any = doc
	for _, k := range keys {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
