// Template tests of the S3 endpoint's TLS settings.

package chart

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// s3Args are the values of storage type S3 over HTTPS.
var s3Args = []string{"--set", "dvcr.storage.type=S3", "--set", "dvcr.storage.s3.bucket=images",
	"--set", "dvcr.storage.s3.endpoint=https://rgw.storage.svc", "--set", "dvcr.storage.s3.credentialsSecret=s3-creds"}

// TestS3TLS: skipVerify becomes the driver's skipverify; a CA bundle from a
// Secret or a ConfigMap is mounted read-only and named by AWS_CA_BUNDLE,
// which the driver's AWS SDK reads.
func TestS3TLS(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		skipVerify bool
		wantCA     string // AWS_CA_BUNDLE; empty: none
		volume     func(v corev1.Volume) bool
	}{
		{name: "defaults: verified against the system roots"},
		{name: "skipVerify", args: []string{"--set", "dvcr.storage.s3.skipVerify=true"}, skipVerify: true},
		{
			name:   "CA bundle in a Secret",
			args:   []string{"--set", "dvcr.storage.s3.caBundle.secretName=rgw-ca"},
			wantCA: "/etc/dvcr/s3-ca/ca.crt",
			volume: func(v corev1.Volume) bool {
				return v.Secret != nil && v.Secret.SecretName == "rgw-ca" && v.Secret.Items[0].Key == "ca.crt"
			},
		},
		{
			name:   "CA bundle in a ConfigMap under another key",
			args:   []string{"--set", "dvcr.storage.s3.caBundle.configMapName=kube-root-ca.crt", "--set", "dvcr.storage.s3.caBundle.key=root.pem"},
			wantCA: "/etc/dvcr/s3-ca/root.pem",
			volume: func(v corev1.Volume) bool {
				return v.ConfigMap != nil && v.ConfigMap.Name == "kube-root-ca.crt" && v.ConfigMap.Items[0].Key == "root.pem"
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := render(t, append(slices.Clone(s3Args), tt.args...)...)
			checkRestricted(t, r)
			s3 := r.Config.Registry.Storage["s3"]
			if s3["skipverify"] != tt.skipVerify || s3["secure"] != true {
				t.Errorf("storage.s3 = %v, want skipverify %t, secure", s3, tt.skipVerify)
			}
			env := ""
			for _, e := range r.container(t).Env {
				if e.Name == "AWS_CA_BUNDLE" {
					env = e.Value
				}
			}
			if env != tt.wantCA {
				t.Errorf("AWS_CA_BUNDLE = %q, want %q", env, tt.wantCA)
			}
			if tt.wantCA == "" {
				return
			}
			if v := r.volume(t, "s3-ca"); !tt.volume(*v) {
				t.Errorf("volume s3-ca = %+v", v)
			}
			for _, m := range r.container(t).VolumeMounts {
				if m.Name == "s3-ca" && (!m.ReadOnly || !strings.HasPrefix(tt.wantCA, m.MountPath+"/")) {
					t.Errorf("mount %+v, want read-only holding %s", m, tt.wantCA)
				}
			}
		})
	}
	t.Run("no CA bundle on a PVC", func(t *testing.T) {
		r := render(t, "--set", "dvcr.storage.s3.caBundle.secretName=rgw-ca")
		if p := r.mountPath(t, "s3-ca"); p != "" {
			t.Errorf("s3-ca mounted at %s without storage type S3", p)
		}
	})
}

// TestS3TLSChecks: wrong TLS values fail the render naming the value.
func TestS3TLSChecks(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"both a Secret and a ConfigMap", []string{"--set", "dvcr.storage.s3.caBundle.secretName=a", "--set", "dvcr.storage.s3.caBundle.configMapName=b"},
			[]string{"dvcr.storage.s3.caBundle", "not both"}},
		{"skipVerify as a string", []string{"--set-string", "dvcr.storage.s3.skipVerify=true"},
			[]string{"/dvcr/storage/s3/skipVerify", "want boolean"}},
		{"a key with a slash", []string{"--set", "dvcr.storage.s3.caBundle.key=a/b"},
			[]string{"/dvcr/storage/s3/caBundle/key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := templateErr(t, append(slices.Clone(s3Args), tt.args...)...)
			if err == nil {
				t.Fatalf("helm template succeeded, want a failure")
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("error output does not contain %q:\n%s", w, out)
				}
			}
		})
	}
}
