package registry

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestUploadOrder: a request on an upload session waits for the session's
// request in flight (a commit whose client went, then its DELETE); other
// sessions and other paths do not wait.
func TestUploadOrder(t *testing.T) {
	release := make(chan struct{})
	var inCommit atomic.Bool
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			inCommit.Store(true)
			<-release
			inCommit.Store(false)
		}
		if r.Method == http.MethodDelete && r.URL.Path == "/v2/cvi/a/blobs/uploads/u1" && inCommit.Load() {
			t.Errorf("DELETE %s served beside the commit of the same session", r.URL.Path)
		}
	})
	h := newUploadOrder().Middleware(next)
	commitDone := make(chan struct{})
	go func() {
		defer close(commitDone)
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPut, "/v2/cvi/a/blobs/uploads/u1?digest=sha256:0", nil))
	}()
	for !inCommit.Load() {
		time.Sleep(time.Millisecond)
	}
	for _, c := range []struct{ method, path string }{
		{http.MethodDelete, "/v2/cvi/a/blobs/uploads/u2"},
		{http.MethodPost, "/v2/cvi/a/blobs/uploads/"},
		{http.MethodGet, "/v2/cvi/a/blobs/sha256:0"},
	} {
		served := make(chan struct{})
		go func() {
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(c.method, c.path, nil))
			close(served)
		}()
		select {
		case <-served:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s %s waited for another session's commit", c.method, c.path)
		}
	}
	deleted := make(chan struct{})
	go func() {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodDelete, "/v2/cvi/a/blobs/uploads/u1", nil))
		close(deleted)
	}()
	time.Sleep(50 * time.Millisecond) // the DELETE would be served by now if it did not wait
	close(release)
	<-commitDone
	<-deleted
}

func TestUploadSession(t *testing.T) {
	for _, c := range []struct {
		path, want string
		ok         bool
	}{
		{"/v2/cvi/a/blobs/uploads/u1", "/v2/cvi/a/u1", true},
		{"/v2/vi/ns/a/blobs/uploads/0e5f", "/v2/vi/ns/a/0e5f", true},
		{"/v2/cvi/a/blobs/uploads/", "", false},
		{"/v2/cvi/a/blobs/sha256:0", "", false},
		{"/v2/cvi/a/manifests/latest", "", false},
	} {
		t.Run(c.path, func(t *testing.T) {
			if got, ok := uploadSession(c.path); got != c.want || ok != c.ok {
				t.Errorf("uploadSession(%q) = %q, %v", c.path, got, ok)
			}
		})
	}
}
