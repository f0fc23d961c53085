package chart

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"

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

// TestValues checks one value, or a group of values, at a time.
func TestValues(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, r *rendered)
	}{
		{
			name: "pre-hashed htpasswd line",
			args: []string{"--set", "dvcr.auth.enabled=true", "--set-string", "dvcr.auth.htpasswd=" + htpasswdLine},
			check: func(t *testing.T, r *rendered) {
				checkAuth(t, r, "admin", "s3cret")
				if got := string(r.Secret.Data["htpasswd"]); got != htpasswdLine+"\n" {
					t.Errorf("htpasswd = %q, want the given line", got)
				}
				if _, ok := r.Secret.Data["fingerprint"]; ok {
					t.Errorf("fingerprint stored for a pre-hashed line")
				}
			},
		},
		{
			name: "existing htpasswd secret",
			args: []string{"--set", "dvcr.auth.enabled=true", "--set", "dvcr.auth.existingSecret=my-htpasswd"},
			check: func(t *testing.T, r *rendered) {
				if r.Secret != nil {
					t.Errorf("chart made Secret %s although an existing one is given", r.Secret.Name)
				}
				if s := r.volume(t, "auth").Secret; s == nil || s.SecretName != "my-htpasswd" {
					t.Errorf("auth volume = %+v, want Secret my-htpasswd", r.volume(t, "auth"))
				}
				if got := r.configValue(t, "auth", "htpasswd", "path"); got != r.mountPath(t, "auth")+"/htpasswd" {
					t.Errorf("auth.htpasswd.path = %v", got)
				}
			},
		},
		{
			name: "ephemeral storage",
			args: []string{"--set", "dvcr.storage.type=Ephemeral", "--set-string", "dvcr.storage.ephemeral.sizeLimit=20Gi"},
			check: func(t *testing.T, r *rendered) {
				if r.PVC != nil {
					t.Errorf("PVC rendered for Ephemeral storage")
				}
				ed := r.volume(t, "data").EmptyDir
				if ed == nil || ed.SizeLimit == nil || ed.SizeLimit.String() != "20Gi" {
					t.Errorf("data volume = %+v, want emptyDir with sizeLimit 20Gi", r.volume(t, "data"))
				}
			},
		},
		{
			name: "gc timeouts and registry host",
			args: []string{
				"--set", "dvcr.gc.timeout=30m", "--set", "dvcr.gc.drainTimeout=90s", "--set", "dvcr.gc.gracePeriod=0s",
				"--set-string", "dvcr.gc.schedule=CRON_TZ=Europe/Berlin 0 3 * * *",
				"--set", "dvcr.registryHost=registry.example.com",
				"--set", "dvcr.repositories.allowUnmanaged=true",
			},
			check: func(t *testing.T, r *rendered) {
				gc := r.Config.DVCR.GC
				if gc.Timeout != 30*time.Minute || gc.DrainTimeout != 90*time.Second || gc.GracePeriod != 0 {
					t.Errorf("gc = %+v", gc)
				}
				if gc.Schedule != "CRON_TZ=Europe/Berlin 0 3 * * *" {
					t.Errorf("gc.schedule = %q", gc.Schedule)
				}
				if r.Config.DVCR.RegistryHost != "registry.example.com" || !r.Config.DVCR.Repositories.AllowUnmanaged {
					t.Errorf("dvcr = %+v", r.Config.DVCR)
				}
			},
		},
		{
			name: "metrics off",
			args: []string{"--set", "dvcr.metrics.enabled=false"},
			check: func(t *testing.T, r *rendered) {
				if r.Config.Registry.HTTP.Debug.Prometheus.Enabled {
					t.Errorf("http.debug.prometheus.enabled = true")
				}
			},
		},
		{
			name: "image, resources and ids",
			args: []string{
				"--set", "image.repository=registry.example.com/dvcr", "--set-string", "image.tag=1.2.3",
				"--set", "image.pullPolicy=Always",
				"--set", "resources.limits.memory=4Gi", "--set", "resources.requests.cpu=1",
				"--set", "securityContext.runAsUser=1000", "--set", "securityContext.fsGroup=2000",
			},
			check: func(t *testing.T, r *rendered) {
				c := r.container(t)
				if c.Image != "registry.example.com/dvcr:1.2.3" || c.ImagePullPolicy != corev1.PullAlways {
					t.Errorf("image = %s (%s)", c.Image, c.ImagePullPolicy)
				}
				if c.Resources.Limits.Memory().String() != "4Gi" || c.Resources.Requests.Cpu().String() != "1" {
					t.Errorf("resources = %+v", c.Resources)
				}
				pod := r.Deployment.Spec.Template.Spec.SecurityContext
				if *pod.RunAsUser != 1000 || *pod.FSGroup != 2000 || *c.SecurityContext.RunAsUser != 1000 {
					t.Errorf("ids = pod %d/%d, container %d", *pod.RunAsUser, *pod.FSGroup, *c.SecurityContext.RunAsUser)
				}
			},
		},
		{
			name: "fullnameOverride and another namespace's registry host",
			args: []string{"--set", "fullnameOverride=images"},
			check: func(t *testing.T, r *rendered) {
				for _, o := range r.Objects {
					if o.Kind != "CustomResourceDefinition" && o.Name != "images" && o.Name != namespace+":images" {
						t.Errorf("%s is named %q", o.Kind, o.Name)
					}
				}
				if got := r.Config.DVCR.RegistryHost; got != "images."+namespace+".svc" {
					t.Errorf("registryHost = %q", got)
				}
				if got := r.Config.DVCR.Provisioning.Upload.InClusterURL; got != "http://images."+namespace+".svc/upload" {
					t.Errorf("upload.inClusterURL = %q", got)
				}
				checkRBAC(t, r, true)
			},
		},
	}
	tests = append(tests, provisioningValueTests...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := render(t, tt.args...)
			checkRestricted(t, r)
			tt.check(t, r)
		})
	}
}

// TestChecksum checks that the pod template carries the digest of
// config.yml, so that a changed schedule rolls the pod, and that nothing
// else moves it.
func TestChecksum(t *testing.T) {
	checksum := func(t *testing.T, args ...string) string {
		t.Helper()
		r := render(t, args...)
		got := r.Deployment.Spec.Template.Annotations["checksum/config"]
		if want := sha256Hex([]byte(r.ConfigMap.Data["config.yml"])); got != want {
			t.Fatalf("checksum/config = %q, want sha256 of config.yml %q", got, want)
		}
		return got
	}
	base := checksum(t, "--set-string", "dvcr.gc.schedule=0 20 * * *")
	tests := []struct {
		name    string
		args    []string
		changes bool
	}{
		{"same values", []string{"--set-string", "dvcr.gc.schedule=0 20 * * *"}, false},
		{"schedule changed", []string{"--set-string", "dvcr.gc.schedule=0 21 * * *"}, true},
		{"schedule off", nil, true},
		{"grace period changed", []string{"--set-string", "dvcr.gc.schedule=0 20 * * *", "--set", "dvcr.gc.gracePeriod=2h"}, true},
		{"pvc size changed", []string{"--set-string", "dvcr.gc.schedule=0 20 * * *", "--set", "dvcr.storage.persistentVolumeClaim.size=60Gi"}, false},
		{"resources changed", []string{"--set-string", "dvcr.gc.schedule=0 20 * * *", "--set", "resources.limits.memory=2Gi"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := checksum(t, tt.args...)
			if changed := got != base; changed != tt.changes {
				t.Errorf("checksum changed = %t, want %t (base %s, got %s)", changed, tt.changes, base, got)
			}
		})
	}
}

// TestSchemaAndChecks checks that wrong values fail the render with a
// message naming the value: values.schema.json for types, enums and
// formats, the chart's own checks for combinations.
func TestSchemaAndChecks(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string // all must appear in the error output
	}{
		{"size as a number", []string{"--set", "dvcr.storage.persistentVolumeClaim.size=10"},
			[]string{"/dvcr/storage/persistentVolumeClaim/size", "want string"}},
		{"size not a quantity", []string{"--set", "dvcr.storage.persistentVolumeClaim.size=lots"},
			[]string{"/dvcr/storage/persistentVolumeClaim/size"}},
		{"storage type Foo", []string{"--set", "dvcr.storage.type=Foo"},
			[]string{"/dvcr/storage/type", "PersistentVolumeClaim"}},
		{"grace period seconds as a string", []string{"--set-string", "terminationGracePeriodSeconds=60"},
			[]string{"/terminationGracePeriodSeconds", "want integer"}},
		{"uid as a string", []string{"--set-string", "securityContext.runAsUser=64535"},
			[]string{"/securityContext/runAsUser", "want integer"}},
		{"probe period as a string", []string{"--set-string", "probes.liveness.periodSeconds=10"},
			[]string{"/probes/liveness/periodSeconds", "want integer"}},
		{"root uid", []string{"--set", "securityContext.runAsUser=0"},
			[]string{"/securityContext/runAsUser"}},
		{"auth enabled as a string", []string{"--set-string", "dvcr.auth.enabled=true"},
			[]string{"/dvcr/auth/enabled", "want boolean"}},
		{"six-field schedule", []string{"--set-string", "dvcr.gc.schedule=0 0 20 * * *"},
			[]string{"/dvcr/gc/schedule"}},
		{"negative timeout", []string{"--set", "dvcr.gc.timeout=-1m"},
			[]string{"/dvcr/gc/timeout"}},
		{"misspelt key", []string{"--set-string", "dvcr.gc.shedule=0 20 * * *"},
			[]string{"shedule"}},
		{"unknown log level", []string{"--set", "dvcr.logLevel=verbose"},
			[]string{"/dvcr/logLevel"}},
		{"auth without credentials", []string{"--set", "dvcr.auth.enabled=true"},
			[]string{"dvcr.auth.htpasswd", "dvcr.auth.username", "dvcr.auth.existingSecret"}},
		{"auth with two sources", []string{"--set", "dvcr.auth.enabled=true", "--set", "dvcr.auth.existingSecret=x",
			"--set", "dvcr.auth.username=a", "--set", "dvcr.auth.password=b"},
			[]string{"exactly one of"}},
		{"username without password", []string{"--set", "dvcr.auth.enabled=true", "--set", "dvcr.auth.username=a"},
			[]string{"dvcr.auth.password"}},
		{"tls without secret", []string{"--set", "dvcr.tls.enabled=true"},
			[]string{"dvcr.tls.secretName"}},
		{"ingress without host", []string{"--set", "dvcr.provisioning.upload.ingress.enabled=true"},
			[]string{"dvcr.provisioning.upload.ingress.host"}},
		{"ingress without provisioning", []string{"--set", "dvcr.provisioning.upload.ingress.enabled=true",
			"--set", "dvcr.provisioning.upload.ingress.host=upload.example.com", "--set", "dvcr.provisioning.enabled=false"},
			[]string{"dvcr.provisioning.upload.ingress.enabled", "dvcr.provisioning.enabled=true"}},
		{"concurrency zero", []string{"--set", "dvcr.provisioning.concurrency=0"},
			[]string{"/dvcr/provisioning/concurrency"}},
		{"concurrency as a string", []string{"--set-string", "dvcr.provisioning.concurrency=4"},
			[]string{"/dvcr/provisioning/concurrency", "want integer"}},
		{"external url without scheme", []string{"--set", "dvcr.provisioning.upload.externalURL=upload.example.com/upload"},
			[]string{"/dvcr/provisioning/upload/externalURL"}},
		{"upload timeout not a duration", []string{"--set", "dvcr.provisioning.upload.timeout=an hour"},
			[]string{"/dvcr/provisioning/upload/timeout"}},
		{"registry url with a path", []string{"--set", "dvcr.provisioning.registryURL=dvcr.example.com/x"},
			[]string{"/dvcr/provisioning/registryURL"}},
		{"crds.install as a string", []string{"--set-string", "crds.install=false"},
			[]string{"/crds/install", "want boolean"}},
		{"misspelt ingress key", []string{"--set", "dvcr.provisioning.upload.ingress.hostname=x"},
			[]string{"hostname"}},
		{"service monitor without metrics", []string{"--set", "monitoring.serviceMonitor.enabled=true", "--set", "dvcr.metrics.enabled=false"},
			[]string{"monitoring.serviceMonitor.enabled", "dvcr.metrics.enabled"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := templateErr(t, tt.args...)
			if err == nil {
				t.Fatalf("helm template %s succeeded, want a failure", strings.Join(tt.args, " "))
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("error output does not contain %q:\n%s", w, out)
				}
			}
		})
	}
}

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
