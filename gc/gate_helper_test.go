package gc

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dvcr/dvcr/registry"
)

// holdWrite starts a write request through the gate that stays in flight
// until release is closed.
func holdWrite(t *testing.T, gate *registry.Gate, release <-chan struct{}) {
	t.Helper()
	started := make(chan struct{})
	h := gate.Middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		close(started)
		<-release
	}))
	go h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPut, "/v2/cvi/x/blobs/uploads/1", nil))
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("the write did not start")
	}
}
