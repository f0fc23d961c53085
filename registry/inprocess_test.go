package registry_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"

	"github.com/dvcr/dvcr/config"
	"github.com/dvcr/dvcr/registry"
	"github.com/dvcr/dvcr/test/dvcrtest"
)

// TestInProcessWritesBehindAuth: with auth.htpasswd, a request from the
// network without credentials is refused, while the in-process transport
// (the provisioning controller's) pushes and pulls.
func TestInProcessWritesBehindAuth(t *testing.T) {
	dir := t.TempDir()
	hash, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte("admin:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("test", []byte(fmt.Sprintf(`version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: %s}, delete: {enabled: true}}
http: {addr: 127.0.0.1:0}
auth: {htpasswd: {realm: test, path: %s}}
`, filepath.Join(dir, "data"), htpasswd)))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := registry.NewServer(context.Background(), cfg, dvcrtest.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()

	for _, tc := range []struct {
		method, path string
	}{{http.MethodGet, "/v2/"}, {http.MethodPost, "/v2/cvi/x/blobs/uploads/"}} {
		req, _ := http.NewRequest(tc.method, hs.URL+tc.path, nil)
		req = req.WithContext(context.WithValue(req.Context(), struct{}{}, true)) // a client's context never reaches the server
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s %s from the network without credentials: %d, want 401", tc.method, tc.path, resp.StatusCode)
		}
	}
	ref, _ := name.ParseReference("dvcr.local/cvi/behind-auth:latest")
	img := randomImage(t)
	if err := remote.Write(ref, img, remote.WithTransport(srv.Transport())); err != nil {
		t.Fatalf("in-process push behind auth: %v", err)
	}
	if _, err := remote.Image(ref, remote.WithTransport(srv.Transport())); err != nil {
		t.Fatalf("in-process pull behind auth: %v", err)
	}
}
