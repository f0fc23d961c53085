package registry

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"

	"github.com/dvcr/dvcr/storage"
)

// noSpaceDriver fails every write of data files with ENOSPC, as the
// filesystem driver does on a full volume.
type noSpaceDriver struct{ storagedriver.StorageDriver }

func (d noSpaceDriver) Writer(ctx context.Context, path string, a bool) (storagedriver.FileWriter, error) {
	w, err := d.StorageDriver.Writer(ctx, path, a)
	return failingWriter{w}, err
}

type failingWriter struct{ storagedriver.FileWriter }

func (w failingWriter) Write(p []byte) (int, error) {
	_, _ = w.FileWriter.Write(p[:1])
	return 1, &os.PathError{Op: "write", Path: "data", Err: syscall.ENOSPC}
}

// TestSpaceGuard: a write failing for lack of space is answered 507 with
// an OCI error saying so and the free space, and its upload is deleted at
// once; other failures and reads are left as they are.
func TestSpaceGuard(t *testing.T) {
	const upload = "/docker/registry/v2/repositories/cvi/a/_uploads/u1"
	tests := []struct {
		name       string
		method     string
		wantStatus int
		wantGone   bool
	}{
		{name: "chunk of an upload", method: http.MethodPatch, wantStatus: 507, wantGone: true},
		{name: "a read", method: http.MethodGet, wantStatus: 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := inmemory.New()
			ctx := context.Background()
			if err := mem.PutContent(ctx, upload+"/startedat", []byte("now")); err != nil {
				t.Fatal(err)
			}
			driver := storage.WatchSpace(noSpaceDriver{mem})
			app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fw, err := driver.Writer(r.Context(), upload+"/data", false)
				if err == nil {
					_, err = io.Copy(fw, r.Body)
				}
				if err != nil {
					w.WriteHeader(500)
					_, _ = w.Write([]byte(`{"errors":[{"code":"UNKNOWN"}]}`))
				}
			})
			h := (&spaceGuard{root: t.TempDir(), driver: mem}).Middleware(app)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, "/v2/cvi/a/blobs/uploads/u1", strings.NewReader("chunk")))
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.wantStatus, rec.Body)
			}
			_, err := mem.Stat(ctx, upload)
			if gone := errors.As(err, new(storagedriver.PathNotFoundError)); gone != tt.wantGone {
				t.Errorf("upload gone %t, want %t (%v)", gone, tt.wantGone, err)
			}
			if tt.wantStatus != 507 {
				return
			}
			var body struct {
				Errors []struct{ Code, Message string }
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || len(body.Errors) != 1 {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			e := body.Errors[0]
			if e.Code != "DENIED" || !regexp.MustCompile(`^DVCR storage is full: [0-9.]+[KMGTP]?i?B free of [0-9.]+[KMGTP]?i?B; run garbage collection or enlarge the volume$`).MatchString(e.Message) {
				t.Errorf("error %+v", e)
			}
		})
	}
}

// TestUploadDir: the upload a failed path belongs to.
func TestUploadDir(t *testing.T) {
	tests := []struct{ path, want string }{
		{"/docker/registry/v2/repositories/vi/ns/x/_uploads/abc/data", "/docker/registry/v2/repositories/vi/ns/x/_uploads/abc"},
		{"/docker/registry/v2/repositories/cvi/x/_uploads/abc/hashstates/sha256/0", "/docker/registry/v2/repositories/cvi/x/_uploads/abc"},
		{"/docker/registry/v2/blobs/sha256/aa/aa/data", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got, _ := uploadDir(tt.path); got != tt.want {
				t.Errorf("uploadDir = %q, want %q", got, tt.want)
			}
		})
	}
}
