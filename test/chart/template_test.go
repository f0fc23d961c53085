package chart

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/dvcr/dvcr/config"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// Values of the non-default render: TLS, auth, a storage class, a GC
// schedule, a ServiceMonitor.
var nonDefault = []string{
	"--set", "dvcr.tls.enabled=true",
	"--set", "dvcr.tls.secretName=dvcr-tls",
	"--set", "dvcr.auth.enabled=true",
	"--set", "dvcr.auth.username=admin",
	"--set", "dvcr.auth.password=s3cret",
	"--set", "dvcr.storage.persistentVolumeClaim.storageClassName=linstor-thick-data-r1",
	"--set", "dvcr.storage.persistentVolumeClaim.size=58G",
	"--set-string", "dvcr.gc.schedule=0 20 * * *",
	"--set", "monitoring.serviceMonitor.enabled=true",
	"--set", "monitoring.serviceMonitor.labels.prometheus=main",
}

// A pre-hashed htpasswd line (bcrypt of "s3cret"), for a deterministic render.
const htpasswdLine = "admin:$2y$05$Gl4Lb.nX3W9Gx0J1VY06n.PWHYH9Xq2/18MMy.y00UGtKjbGbBqia"

func TestLint(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"default values", nil},
		{"non-default values", nonDefault},
		{"ephemeral storage", []string{"--set", "dvcr.storage.type=Ephemeral"}},
		{"three replicas on S3", []string{"--set", "replicas=3", "--set", "dvcr.storage.type=S3", "--set", "dvcr.storage.s3.bucket=images"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"lint", "--strict", chartDir(t)}, tt.args...)
			out, err := helm(t, "", args...)
			if err != nil {
				t.Fatalf("helm lint: %v\n%s", err, out)
			}
			for _, bad := range []string{"[WARNING]", "[ERROR]"} {
				if strings.Contains(out, bad) {
					t.Errorf("helm lint reports %s:\n%s", bad, out)
				}
			}
		})
	}
}

// TestGolden compares whole renders with testdata/*.yaml; -update rewrites
// them. Only deterministic renders have golden files (credentials given as
// username/password get a fresh bcrypt salt at every render).
func TestGolden(t *testing.T) {
	tests := []struct {
		file string
		args []string
	}{
		{"default.yaml", nil},
		{"tls-auth-class-schedule-servicemonitor.yaml", []string{
			"--set", "dvcr.tls.enabled=true",
			"--set", "dvcr.tls.secretName=dvcr-tls",
			"--set", "dvcr.auth.enabled=true",
			"--set-string", "dvcr.auth.htpasswd=" + htpasswdLine,
			"--set", "dvcr.storage.persistentVolumeClaim.storageClassName=linstor-thick-data-r1",
			"--set-string", "dvcr.gc.schedule=0 20 * * *",
			"--set", "monitoring.serviceMonitor.enabled=true",
		}},
		{"ephemeral.yaml", []string{"--set", "dvcr.storage.type=Ephemeral"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got := render(t, tt.args...).Manifest
			path := filepath.Join("testdata", tt.file)
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run `go test ./test/chart/ -run TestGolden -update` to create it)", err)
			}
			if got != string(want) {
				t.Errorf("render differs from %s (run with -update after an intended change):\n%s",
					path, lineDiff(string(want), got))
			}
		})
	}
}

// lineDiff lists the lines of want and got that differ, position by position.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl + "\n")
		}
	}
	return b.String()
}

// TestDefaults checks the render with default values field by field.
func TestDefaults(t *testing.T) {
	r := render(t)

	t.Run("objects", func(t *testing.T) {
		var kinds []string
		for _, o := range r.Objects {
			kinds = append(kinds, o.Kind)
			if o.Kind == "CustomResourceDefinition" {
				continue
			}
			if o.Name != "dvcr" && o.Name != namespace+":dvcr" {
				t.Errorf("%s is named %q, want dvcr", o.Kind, o.Name)
			}
		}
		slices.Sort(kinds)
		want := []string{"ClusterRole", "ClusterRoleBinding", "ConfigMap",
			"CustomResourceDefinition", "CustomResourceDefinition", "CustomResourceDefinition",
			"Deployment", "PersistentVolumeClaim", "Role", "RoleBinding", "Service", "ServiceAccount"}
		if !slices.Equal(kinds, want) {
			t.Errorf("kinds = %v, want %v", kinds, want)
		}
	})

	t.Run("deployment", func(t *testing.T) {
		d := r.Deployment
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
			t.Errorf("replicas = %v, want 1", d.Spec.Replicas)
		}
		if d.Spec.Strategy.Type != "Recreate" || d.Spec.Strategy.RollingUpdate != nil {
			t.Errorf("strategy = %+v, want Recreate", d.Spec.Strategy)
		}
		pod := d.Spec.Template.Spec
		if pod.ServiceAccountName != r.ServiceAccount.Name {
			t.Errorf("serviceAccountName = %q, want %q", pod.ServiceAccountName, r.ServiceAccount.Name)
		}
		if pod.AutomountServiceAccountToken != nil && !*pod.AutomountServiceAccountToken {
			t.Errorf("the service account token is not mounted; the GC needs it")
		}
		sel := d.Spec.Selector.MatchLabels
		for k, v := range sel {
			if d.Spec.Template.Labels[k] != v {
				t.Errorf("pod label %s = %q, selector wants %q", k, d.Spec.Template.Labels[k], v)
			}
		}
		c := r.container(t)
		if !slices.Equal(c.Command, []string{"dvcr"}) ||
			!slices.Equal(c.Args, []string{"serve", "--config", "/etc/docker/registry/config.yml"}) {
			t.Errorf("command = %q %q, want dvcr serve --config /etc/docker/registry/config.yml", c.Command, c.Args)
		}
		checkEnv(t, r)
		if c.Image != "ghcr.io/dvcr/dvcr:0.1.0" || c.ImagePullPolicy != corev1.PullIfNotPresent {
			t.Errorf("image = %s (%s)", c.Image, c.ImagePullPolicy)
		}
		wantPorts := map[string]int32{"registry": 5000, "metrics": 5001}
		for _, p := range c.Ports {
			if wantPorts[p.Name] != p.ContainerPort {
				t.Errorf("container port %s = %d", p.Name, p.ContainerPort)
			}
			delete(wantPorts, p.Name)
		}
		if len(wantPorts) != 0 {
			t.Errorf("container ports missing: %v", wantPorts)
		}
		req, lim := c.Resources.Requests, c.Resources.Limits
		if req.Cpu().IsZero() || req.Memory().IsZero() || lim.Memory().IsZero() {
			t.Errorf("resources = %+v, want requests and a memory limit", c.Resources)
		}
	})

	t.Run("security context", func(t *testing.T) {
		checkRestricted(t, r)
	})

	t.Run("probes", func(t *testing.T) {
		checkProbes(t, r, corev1.URISchemeHTTP)
	})

	t.Run("volumes", func(t *testing.T) {
		if got := r.mountPath(t, "config"); got != "/etc/docker/registry" {
			t.Errorf("config mounted at %q", got)
		}
		if cm := r.volume(t, "config").ConfigMap; cm == nil || cm.Name != r.ConfigMap.Name {
			t.Errorf("config volume = %+v, want ConfigMap %s", r.volume(t, "config"), r.ConfigMap.Name)
		}
		if got := r.mountPath(t, "data"); got != "/var/lib/registry" {
			t.Errorf("data mounted at %q", got)
		}
		if pvc := r.volume(t, "data").PersistentVolumeClaim; pvc == nil || pvc.ClaimName != r.PVC.Name {
			t.Errorf("data volume = %+v, want PVC %s", r.volume(t, "data"), r.PVC.Name)
		}
		// The admin socket directory must be writable with a read-only root.
		if got := r.mountPath(t, "run"); got != "/var/run/dvcr" {
			t.Errorf("run mounted at %q, want /var/run/dvcr", got)
		}
		if r.volume(t, "run").EmptyDir == nil {
			t.Errorf("run volume is not an emptyDir")
		}
		for _, m := range r.container(t).VolumeMounts {
			if (m.Name == "data" || m.Name == "run") && m.ReadOnly {
				t.Errorf("volume %s is mounted read-only", m.Name)
			}
		}
	})

	t.Run("pvc", func(t *testing.T) {
		pvc := r.PVC
		if pvc == nil {
			t.Fatal("no PersistentVolumeClaim")
		}
		if got := pvc.Spec.Resources.Requests[corev1.ResourceStorage]; got.Cmp(resource.MustParse("50Gi")) != 0 {
			t.Errorf("size = %s, want 50Gi", got.String())
		}
		if pvc.Spec.StorageClassName != nil {
			t.Errorf("storageClassName = %q, want none (the cluster default)", *pvc.Spec.StorageClassName)
		}
		if !slices.Equal(pvc.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
			t.Errorf("accessModes = %v, want [ReadWriteOnce]", pvc.Spec.AccessModes)
		}
		if pvc.Annotations["helm.sh/resource-policy"] != "keep" {
			t.Errorf("annotations = %v, want helm.sh/resource-policy: keep", pvc.Annotations)
		}
	})

	t.Run("service", func(t *testing.T) {
		checkService(t, r, "http", 80)
	})

	t.Run("config", func(t *testing.T) {
		checkConfig(t, r)
		if r.Config.DVCR.GC.Schedule != "" {
			t.Errorf("gc.schedule = %q, want empty (off)", r.Config.DVCR.GC.Schedule)
		}
		if r.Config.DVCR.Verify.Schedule != "" {
			t.Errorf("verify.schedule = %q, want empty (off)", r.Config.DVCR.Verify.Schedule)
		}
		if r.Config.Registry.Auth.Type() != "" {
			t.Errorf("auth = %v, want none", r.Config.Registry.Auth)
		}
		if r.Config.Registry.HTTP.TLS.Certificate != "" {
			t.Errorf("http.tls = %+v, want none", r.Config.Registry.HTTP.TLS)
		}
		if _, ok := r.Deployment.Spec.Template.Annotations["checksum/secret"]; ok {
			t.Errorf("checksum/secret without a chart-made Secret")
		}
	})

	t.Run("rbac", func(t *testing.T) {
		checkRBAC(t, r, true)
	})

	t.Run("provisioning", func(t *testing.T) {
		checkProvisioning(t, r, config.Provisioning{
			Enabled:     true,
			Concurrency: 4,
			Upload: config.Upload{
				InClusterURL: "http://dvcr." + namespace + ".svc/upload",
				Timeout:      time.Hour,
			},
		})
		if r.Ingress != nil {
			t.Errorf("Ingress rendered by default")
		}
	})

	t.Run("crds", func(t *testing.T) {
		checkCRDs(t, r)
	})
}

// TestNonDefault renders TLS on, auth on (chart-hashed credentials), a
// storage class, a size, a schedule and a ServiceMonitor.
func TestNonDefault(t *testing.T) {
	r := render(t, nonDefault...)

	t.Run("config", func(t *testing.T) {
		checkConfig(t, r)
		if got := r.Config.DVCR.GC.Schedule; got != "0 20 * * *" {
			t.Errorf("gc.schedule = %q, want 0 20 * * *", got)
		}
	})

	t.Run("tls", func(t *testing.T) {
		checkService(t, r, "https", 443)
		checkProbes(t, r, corev1.URISchemeHTTPS)
		tls := r.Config.Registry.HTTP.TLS
		dir := r.mountPath(t, "tls")
		if dir == "" || tls.Certificate != dir+"/tls.crt" || tls.Key != dir+"/tls.key" {
			t.Errorf("http.tls = %s, %s; tls volume mounted at %q", tls.Certificate, tls.Key, dir)
		}
		if s := r.volume(t, "tls").Secret; s == nil || s.SecretName != "dvcr-tls" {
			t.Errorf("tls volume = %+v, want Secret dvcr-tls", r.volume(t, "tls"))
		}
	})

	t.Run("auth", func(t *testing.T) {
		checkAuth(t, r, "admin", "s3cret")
		if r.Secret.Name != "dvcr-auth" {
			t.Errorf("Secret name = %q, want dvcr-auth", r.Secret.Name)
		}
	})

	t.Run("pvc", func(t *testing.T) {
		if got := r.PVC.Spec.Resources.Requests[corev1.ResourceStorage]; got.String() != "58G" {
			t.Errorf("size = %s, want 58G", got.String())
		}
		if c := r.PVC.Spec.StorageClassName; c == nil || *c != "linstor-thick-data-r1" {
			t.Errorf("storageClassName = %v, want linstor-thick-data-r1", c)
		}
	})

	t.Run("service monitor", func(t *testing.T) {
		checkServiceMonitor(t, r)
		labels := r.ServiceMonitor["metadata"].(map[string]any)["labels"].(map[string]any)
		if labels["prometheus"] != "main" {
			t.Errorf("ServiceMonitor labels = %v, want prometheus: main too", labels)
		}
	})

	t.Run("security context", func(t *testing.T) {
		checkRestricted(t, r)
	})

	t.Run("rbac", func(t *testing.T) {
		checkRBAC(t, r, true)
	})

	t.Run("in-cluster upload url with tls", func(t *testing.T) {
		if got, want := r.Config.DVCR.Provisioning.Upload.InClusterURL, "https://dvcr."+namespace+".svc/upload"; got != want {
			t.Errorf("upload.inClusterURL = %q, want %q", got, want)
		}
	})
}
