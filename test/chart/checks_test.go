// Checks of rendered objects shared by the template tests.

package chart

import (
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// checkRestricted checks the restricted Pod Security Standard settings.
func checkRestricted(t *testing.T, r *rendered) {
	t.Helper()
	pod := r.Deployment.Spec.Template.Spec
	psc := pod.SecurityContext
	if psc == nil {
		t.Fatal("no pod securityContext")
	}
	if psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Errorf("pod runAsNonRoot = %s, want true", boolPtr(psc.RunAsNonRoot))
	}
	if psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("pod runAsUser = %v, want a fixed non-root UID", psc.RunAsUser)
	}
	if psc.FSGroup == nil {
		t.Errorf("pod fsGroup not set: the volume would not be writable")
	}
	if psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod seccompProfile = %+v, want RuntimeDefault", psc.SeccompProfile)
	}
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Errorf("pod uses host namespaces")
	}
	c := r.container(t)
	sc := c.SecurityContext
	if sc == nil {
		t.Fatal("no container securityContext")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("allowPrivilegeEscalation = %s, want false", boolPtr(sc.AllowPrivilegeEscalation))
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("readOnlyRootFilesystem = %s, want true", boolPtr(sc.ReadOnlyRootFilesystem))
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Errorf("privileged")
	}
	if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
		t.Errorf("capabilities = %+v, want drop [ALL] and no add", sc.Capabilities)
	}
	if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("container runAsNonRoot = %s, want true", boolPtr(sc.RunAsNonRoot))
	}
	if sc.RunAsUser != nil && psc.RunAsUser != nil && *sc.RunAsUser != *psc.RunAsUser {
		t.Errorf("container runAsUser %d differs from the pod's %d", *sc.RunAsUser, *psc.RunAsUser)
	}
	if sc.SeccompProfile != nil && sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container seccompProfile = %+v", sc.SeccompProfile)
	}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			t.Errorf("volume %s is a hostPath", v.Name)
		}
	}
}

// checkProbes checks liveness and readiness: GET / on the registry port.
func checkProbes(t *testing.T, r *rendered, scheme corev1.URIScheme) {
	t.Helper()
	c := r.container(t)
	for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s probe = %+v, want httpGet", name, p)
			continue
		}
		g := p.HTTPGet
		if g.Path != "/" || g.Port != intstr.FromString("registry") || g.Scheme != scheme {
			t.Errorf("%s probe = %s %s %s, want %s registry /", name, g.Scheme, g.Port.String(), g.Path, scheme)
		}
		if p.PeriodSeconds <= 0 || p.TimeoutSeconds <= 0 || p.FailureThreshold <= 0 {
			t.Errorf("%s probe timing = %+v", name, p.ProbeHandler)
		}
	}
}

// checkService checks the registry port (name, number) and the metrics port,
// and that the Service selects the pod.
func checkService(t *testing.T, r *rendered, name string, port int32) {
	t.Helper()
	s := r.Service
	want := map[string]struct {
		port   int32
		target string
	}{name: {port, "registry"}, "metrics": {5001, "metrics"}}
	if len(s.Spec.Ports) != len(want) {
		t.Errorf("service ports = %+v, want %s:%d and metrics:5001", s.Spec.Ports, name, port)
	}
	for _, p := range s.Spec.Ports {
		w, ok := want[p.Name]
		if !ok || p.Port != w.port || p.TargetPort != intstr.FromString(w.target) {
			t.Errorf("service port %+v, want %s %d -> %s", p, p.Name, w.port, w.target)
		}
	}
	if len(s.Spec.Selector) == 0 {
		t.Fatal("service has no selector")
	}
	for k, v := range s.Spec.Selector {
		if r.Deployment.Spec.Template.Labels[k] != v {
			t.Errorf("service selector %s=%s does not match the pod labels %v", k, v, r.Deployment.Spec.Template.Labels)
		}
	}
}

// checkConfig checks config.yml: the registry keys DVCR relies on, the dvcr:
// section, and the paths the Deployment mounts.
func checkConfig(t *testing.T, r *rendered) {
	t.Helper()
	reg := r.Config.Registry
	if got := reg.Storage.Type(); got != "filesystem" {
		t.Errorf("storage driver = %q, want filesystem", got)
	}
	if got := reg.Storage["filesystem"]["rootdirectory"]; got != r.mountPath(t, "data") || got != "/var/lib/registry" {
		t.Errorf("storage.filesystem.rootdirectory = %v, data volume at %q", got, r.mountPath(t, "data"))
	}
	if got := reg.Storage["cache"]["blobdescriptor"]; got != "inmemory" {
		t.Errorf("storage.cache.blobdescriptor = %v", got)
	}
	if got := reg.Storage["delete"]["enabled"]; got != true {
		t.Errorf("storage.delete.enabled = %v", got)
	}
	if purging, ok := reg.Storage["maintenance"]["uploadpurging"].(map[any]any); !ok || purging["enabled"] != true {
		t.Errorf("storage.maintenance.uploadpurging = %v", reg.Storage["maintenance"]["uploadpurging"])
	}
	if reg.HTTP.Addr != ":5000" {
		t.Errorf("http.addr = %q, want :5000", reg.HTTP.Addr)
	}
	if d := reg.HTTP.Debug; d.Addr != ":5001" || !d.Prometheus.Enabled || d.Prometheus.Path != "/metrics" {
		t.Errorf("http.debug = %+v, want :5001 with prometheus at /metrics", d)
	}
	if sd := reg.Health.StorageDriver; !sd.Enabled {
		t.Errorf("health.storagedriver = %+v, want enabled", sd)
	}
	dvcr := r.Config.DVCR
	if want := r.Service.Name + "." + namespace + ".svc"; dvcr.RegistryHost != want {
		t.Errorf("dvcr.registryHost = %q, want %q", dvcr.RegistryHost, want)
	}
	if want := r.mountPath(t, "run") + "/admin.sock"; dvcr.AdminSocket != want || want != "/var/run/dvcr/admin.sock" {
		t.Errorf("dvcr.adminSocket = %q, run volume at %q", dvcr.AdminSocket, r.mountPath(t, "run"))
	}
	if dvcr.GC.Timeout != 10*time.Minute || dvcr.GC.DrainTimeout != time.Minute || dvcr.GC.GracePeriod != time.Hour {
		t.Errorf("dvcr.gc = %+v, want timeout 10m, drainTimeout 1m, gracePeriod 1h", dvcr.GC)
	}
	for _, key := range []string{"schedule", "timeout", "drainTimeout", "gracePeriod"} {
		if _, ok := r.configValue(t, "dvcr", "gc", key).(string); !ok {
			t.Errorf("dvcr.gc.%s is not written as a string", key)
		}
	}
	if got, want := r.Deployment.Spec.Template.Annotations["checksum/config"], sha256Hex([]byte(r.ConfigMap.Data["config.yml"])); got != want {
		t.Errorf("checksum/config = %q, want sha256 of config.yml %q", got, want)
	}
}

// checkAuth checks the htpasswd Secret, its mount, the auth section and the
// checksum of the Secret, and that user:password verifies against it.
func checkAuth(t *testing.T, r *rendered, user, password string) {
	t.Helper()
	if r.Secret == nil {
		t.Fatal("no Secret for the htpasswd file")
	}
	file := string(r.Secret.Data["htpasswd"])
	name, hash, ok := strings.Cut(strings.TrimSuffix(file, "\n"), ":")
	if !ok || name != user || strings.Contains(hash, "\n") {
		t.Fatalf("htpasswd = %q, want one line for %s", file, user)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)); err != nil {
		t.Errorf("htpasswd line does not verify %s's password: %v", user, err)
	}
	if s := r.volume(t, "auth").Secret; s == nil || s.SecretName != r.Secret.Name {
		t.Errorf("auth volume = %+v, want Secret %s", r.volume(t, "auth"), r.Secret.Name)
	}
	dir := r.mountPath(t, "auth")
	if got := r.Config.Registry.Auth["htpasswd"]["path"]; dir == "" || got != dir+"/htpasswd" {
		t.Errorf("auth.htpasswd.path = %v, auth volume at %q", got, dir)
	}
	if r.Config.Registry.Auth["htpasswd"]["realm"] == "" {
		t.Errorf("auth.htpasswd.realm is empty")
	}
	if got, want := r.Deployment.Spec.Template.Annotations["checksum/secret"], sha256Hex(r.Secret.Data["htpasswd"]); got != want {
		t.Errorf("checksum/secret = %q, want sha256 of the htpasswd file %q", got, want)
	}
}

// checkServiceMonitor checks the ServiceMonitor scrapes the Service's
// metrics port.
func checkServiceMonitor(t *testing.T, r *rendered) {
	t.Helper()
	sm := r.ServiceMonitor
	if sm == nil {
		t.Fatal("no ServiceMonitor")
	}
	if sm["apiVersion"] != "monitoring.coreos.com/v1" {
		t.Errorf("ServiceMonitor apiVersion = %v", sm["apiVersion"])
	}
	spec, _ := sm["spec"].(map[string]any)
	sel, _ := spec["selector"].(map[string]any)
	match, _ := sel["matchLabels"].(map[string]any)
	if len(match) == 0 {
		t.Errorf("ServiceMonitor selector = %v", sel)
	}
	for k, v := range match {
		if r.Service.Labels[k] != v {
			t.Errorf("ServiceMonitor selects %s=%v; the Service has %v", k, v, r.Service.Labels)
		}
	}
	ns, _ := spec["namespaceSelector"].(map[string]any)
	if names, _ := ns["matchNames"].([]any); len(names) != 1 || names[0] != namespace {
		t.Errorf("ServiceMonitor namespaceSelector = %v", ns)
	}
	eps, _ := spec["endpoints"].([]any)
	if len(eps) != 1 {
		t.Fatalf("ServiceMonitor endpoints = %v", eps)
	}
	ep := eps[0].(map[string]any)
	if ep["port"] != "metrics" || ep["path"] != "/metrics" {
		t.Errorf("ServiceMonitor endpoint = %v, want port metrics, path /metrics", ep)
	}
}

// checkRBAC checks that the GC may get and list the three resources, the
// provisioning controller (when enabled) exactly what it needs, nothing
// else, and that the bindings give that to the pod's account.
func checkRBAC(t *testing.T, r *rendered, provisioning bool) {
	t.Helper()
	want := []rbacRule{{
		APIGroups: []string{"virtualization.deckhouse.io"},
		Resources: []string{"clustervirtualimages", "virtualdisks", "virtualimages"},
		Verbs:     []string{"get", "list"},
	}}
	if provisioning {
		want = append(want, provisioningRules...)
	}
	var got []rbacRule
	for _, rule := range r.ClusterRole.Rules {
		got = append(got, rbacRule{
			APIGroups:       sorted(rule.APIGroups),
			Resources:       sorted(rule.Resources),
			Verbs:           sorted(rule.Verbs),
			ResourceNames:   rule.ResourceNames,
			NonResourceURLs: rule.NonResourceURLs,
		})
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ClusterRole rules = %+v, want exactly %+v", got, want)
	}
	if r.ClusterRole.AggregationRule != nil {
		t.Errorf("ClusterRole has an aggregationRule")
	}
	b := r.ClusterRoleBinding
	if b.RoleRef.Kind != "ClusterRole" || b.RoleRef.Name != r.ClusterRole.Name || b.RoleRef.APIGroup != "rbac.authorization.k8s.io" {
		t.Errorf("roleRef = %+v, want ClusterRole %s", b.RoleRef, r.ClusterRole.Name)
	}
	if len(b.Subjects) != 1 || b.Subjects[0].Kind != "ServiceAccount" ||
		b.Subjects[0].Name != r.Deployment.Spec.Template.Spec.ServiceAccountName || b.Subjects[0].Namespace != namespace {
		t.Errorf("subjects = %+v, want the pod's ServiceAccount in %s", b.Subjects, namespace)
	}
	checkLeaseRole(t, r, provisioning)
}

type rbacRule struct {
	APIGroups, Resources, Verbs, ResourceNames, NonResourceURLs []string
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// boolPtr prints an optional bool.
func boolPtr(b *bool) string {
	if b == nil {
		return "unset"
	}
	return strconv.FormatBool(*b)
}

// checkReplicas: three replicas on S3 roll one at a time, spread over
// nodes, share http.secret and the bucket, and coordinate through Leases.
func checkReplicas(t *testing.T, r *rendered) {
	t.Helper()
	d := r.Deployment.Spec
	if d.Replicas == nil || *d.Replicas != 3 || d.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType ||
		d.Strategy.RollingUpdate == nil || d.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 {
		t.Errorf("deployment: replicas %v, strategy %+v", d.Replicas, d.Strategy)
	}
	if r.PVC != nil {
		t.Error("a PVC is rendered for S3")
	}
	if r.PDB == nil || r.PDB.Spec.MaxUnavailable.IntValue() != 1 || r.PDB.Spec.Selector.MatchLabels["app.kubernetes.io/name"] == "" {
		t.Errorf("PodDisruptionBudget = %+v", r.PDB)
	}
	aff := d.Template.Spec.Affinity
	if aff == nil || aff.PodAntiAffinity == nil || len(aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 1 ||
		aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.TopologyKey != "kubernetes.io/hostname" {
		t.Errorf("affinity = %+v, want a preferred anti-affinity by host", aff)
	}
	reg := r.Config.Registry
	s3 := reg.Storage["s3"]
	if reg.Storage.Type() != "s3" || s3["bucket"] != "images" || s3["regionendpoint"] != "http://rgw.storage.svc:8080" || s3["secure"] != false ||
		s3["accesskey"] != "from-secret-s3-creds" || s3["secretkey"] != "from-secret-s3-creds" {
		t.Errorf("storage = %v", reg.Storage)
	}
	if r.HTTPSecret == nil || len(r.HTTPSecret.Data["secret"]) < 32 || reg.HTTP.Secret != string(r.HTTPSecret.Data["secret"]) {
		t.Errorf("http.secret %q from Secret %+v", reg.HTTP.Secret, r.HTTPSecret)
	}
	c := r.Config.DVCR.Cluster
	if !c.Enabled || c.Namespace != namespace || c.LeaseDuration != 15*time.Second || c.RenewDeadline != 10*time.Second {
		t.Errorf("dvcr.cluster = %+v", c)
	}
	if r.Role == nil || !slices.Contains(r.Role.Rules[0].Verbs, "watch") || !slices.Contains(r.Role.Rules[0].Verbs, "list") {
		t.Errorf("Role = %+v, want list and watch on leases", r.Role)
	}
	if r.volume(t, "data").EmptyDir == nil {
		t.Errorf("data volume = %+v, want an emptyDir for upload spools", r.volume(t, "data"))
	}
}
