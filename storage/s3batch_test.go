package storage

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/dvcr/dvcr/config"
	"github.com/dvcr/dvcr/test/testca"
)

// fakeS3 answers DeleteObjects and records what each request carried.
type fakeS3 struct {
	mu       sync.Mutex
	requests []fakeRequest
}

type fakeRequest struct {
	path, auth, token, agent, body string
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, fakeRequest{
		path: r.URL.Path, auth: r.Header.Get("Authorization"), token: r.Header.Get("X-Amz-Security-Token"),
		agent: r.Header.Get("User-Agent"), body: string(body),
	})
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/xml")
	_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></DeleteResult>`)
}

// TestObjectDeleterUsesDriverSettings: the batch deleter sends what the
// s3-aws driver would, for every setting it reads: TLS (skipverify,
// AWS_CA_BUNDLE), credentials from the file, from REGISTRY_STORAGE_S3_* or
// from the AWS environment with a session token, the signature version,
// the user agent and the root directory.
func TestObjectDeleterUsesDriverSettings(t *testing.T) {
	ca := testca.New(t)
	caFile := ca.WritePEM(t)
	fake := &fakeS3{}
	srv := ca.StartTLS(t, fake)
	tests := []struct {
		name     string
		params   string
		env      map[string]string
		wantErr  string
		wantAuth string // pattern of the Authorization header
		want     fakeRequest
	}{
		{
			name:     "skipverify, keys in the file, rootdirectory",
			params:   "accesskey: AKIAFILE\n    secretkey: s\n    skipverify: true\n    rootdirectory: /prefix/\n    useragent: dvcr-test",
			wantAuth: `^AWS4-HMAC-SHA256 Credential=AKIAFILE/`,
			want:     fakeRequest{path: "/bkt", agent: "dvcr-test", body: "<Key>prefix/docker/registry/v2/blobs/x/data</Key>"},
		}, {
			name:     "keys from REGISTRY_STORAGE_S3_*, CA bundle",
			params:   "skipverify: false",
			env:      map[string]string{"REGISTRY_STORAGE_S3_ACCESSKEY": "AKIAREGENV", "REGISTRY_STORAGE_S3_SECRETKEY": "s", "AWS_CA_BUNDLE": caFile},
			wantAuth: `^AWS4-HMAC-SHA256 Credential=AKIAREGENV/`,
			want:     fakeRequest{path: "/bkt", body: "<Key>docker/registry/v2/blobs/x/data</Key>"},
		}, {
			name:     "AWS environment with a session token",
			params:   "skipverify: true",
			env:      map[string]string{"AWS_ACCESS_KEY_ID": "AKIAAWSENV", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "tok"},
			wantAuth: `^AWS4-HMAC-SHA256 Credential=AKIAAWSENV/`,
			want:     fakeRequest{path: "/bkt", token: "tok", body: "<Key>docker/registry/v2/blobs/x/data</Key>"},
		}, {
			name:     "signature v2",
			params:   "accesskey: AKIAV2\n    secretkey: s\n    skipverify: true\n    v4auth: false",
			wantAuth: `^AWS AKIAV2:`,
			want:     fakeRequest{path: "/bkt", body: "<Key>docker/registry/v2/blobs/x/data</Key>"},
		}, {
			name:    "an untrusted certificate",
			params:  "accesskey: AKIAFILE\n    secretkey: s",
			wantErr: "x509: certificate signed by unknown authority",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Only what the case sets: none of the machine's AWS settings.
			for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CA_BUNDLE", "AWS_PROFILE"} {
				t.Setenv(k, "")
			}
			t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
			t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			got, err := deleteThrough(t, srv.URL, tt.params, fake)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !regexp.MustCompile(tt.wantAuth).MatchString(got.auth) {
				t.Errorf("Authorization %q, want %s", got.auth, tt.wantAuth)
			}
			if got.path != tt.want.path || got.token != tt.want.token || !strings.Contains(got.agent, tt.want.agent) || !strings.Contains(got.body, tt.want.body) {
				t.Errorf("request %+v, want %+v", got, tt.want)
			}
		})
	}
	// AWS_CA_BUNDLE (second case) went to the driver's own client, not the
	// process's default one (the last case would then have trusted the CA).
	if http.DefaultClient.Transport != nil {
		t.Errorf("http.DefaultClient's transport was replaced: %T", http.DefaultClient.Transport)
	}
}

// deleteThrough opens the driver of a configuration with the s3 params
// against endpoint and deletes one blob with the batch deleter.
func deleteThrough(t *testing.T, endpoint, params string, fake *fakeS3) (fakeRequest, error) {
	t.Helper()
	yml := fmt.Sprintf("version: 0.1\nstorage:\n  s3:\n    region: us-east-1\n    regionendpoint: %s\n    bucket: bkt\n    forcepathstyle: true\n    %s\n", endpoint, params)
	cfg, err := config.Parse("test.yml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	driver, err := OpenDriver(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	d, ok, err := NewObjectDeleter(driver)
	if err != nil || !ok {
		t.Fatalf("NewObjectDeleter: ok %v, %v", ok, err)
	}
	fake.mu.Lock()
	fake.requests = nil
	fake.mu.Unlock()
	if err := d.DeleteFiles(context.Background(), []string{"/docker/registry/v2/blobs/x/data"}); err != nil {
		return fakeRequest{}, err
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if len(fake.requests) != 1 {
		t.Fatalf("%d requests, want 1", len(fake.requests))
	}
	return fake.requests[0], nil
}
