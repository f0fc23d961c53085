// Template tests of non-default values, checksums and the values schema.

package chart

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

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
			name: "json logs",
			args: []string{"--set", "dvcr.logFormat=json", "--set", "dvcr.logLevel=warn"},
			check: func(t *testing.T, r *rendered) {
				if got := r.Config.Registry.Log.Formatter; got != "json" {
					t.Errorf("log.formatter = %q, want json (what dvcr serve's format follows)", got)
				}
				if got := r.Config.Registry.Log.Level; got != "warn" {
					t.Errorf("log.level = %q", got)
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
			name: "S3 with three replicas",
			args: []string{"--set", "replicas=3", "--set", "dvcr.storage.type=S3", "--set", "dvcr.storage.s3.bucket=images",
				"--set", "dvcr.storage.s3.endpoint=http://rgw.storage.svc:8080", "--set", "dvcr.storage.s3.credentialsSecret=s3-creds",
				"--set", "dvcr.auth.enabled=true", "--set-string", "dvcr.auth.htpasswd=" + htpasswdLine},
			check: checkReplicas,
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
			name: "verify schedule",
			args: []string{"--set-string", "dvcr.verify.schedule=CRON_TZ=UTC 0 4 * * 6"},
			check: func(t *testing.T, r *rendered) {
				if got := r.Config.DVCR.Verify.Schedule; got != "CRON_TZ=UTC 0 4 * * 6" {
					t.Errorf("verify.schedule = %q, want CRON_TZ=UTC 0 4 * * 6", got)
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
		{"verify schedule not a cron", []string{"--set-string", "dvcr.verify.schedule=every night"},
			[]string{"/dvcr/verify/schedule"}},
		{"verify misspelt key", []string{"--set-string", "dvcr.verify.shedule=0 4 * * 6"},
			[]string{"shedule"}},
		{"negative timeout", []string{"--set", "dvcr.gc.timeout=-1m"},
			[]string{"/dvcr/gc/timeout"}},
		{"misspelt key", []string{"--set-string", "dvcr.gc.shedule=0 20 * * *"},
			[]string{"shedule"}},
		{"unknown log level", []string{"--set", "dvcr.logLevel=verbose"},
			[]string{"/dvcr/logLevel"}},
		{"unknown log format", []string{"--set", "dvcr.logFormat=logfmt"},
			[]string{"/dvcr/logFormat"}},
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
		{"two replicas on a PVC", []string{"--set", "replicas=2"},
			[]string{"replicas: 2 replicas need dvcr.storage.type=S3"}},
		{"S3 without a bucket", []string{"--set", "dvcr.storage.type=S3"},
			[]string{"dvcr.storage.s3.bucket is required"}},
		{"S3 endpoint without scheme", []string{"--set", "dvcr.storage.type=S3", "--set", "dvcr.storage.s3.bucket=b", "--set", "dvcr.storage.s3.endpoint=rgw.example.com"},
			[]string{"/dvcr/storage/s3/endpoint"}},
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
