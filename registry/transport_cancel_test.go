package registry

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestTransportCancelWaitsForHandler: a request cancelled while its handler
// runs returns only once the handler has ended. Distribution finishes a
// blob commit whose client is gone; the importer then cancels the upload,
// and that DELETE must not run beside the commit (the two together can
// leave the blob cached with size 0 and served empty).
func TestTransportCancelWaitsForHandler(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	var ended atomic.Bool
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release // like a commit: goes on although the client has gone
		ended.Store(true)
		w.WriteHeader(http.StatusCreated)
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://dvcr.local/v2/cvi/x/blobs/uploads/u?digest=sha256:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		err          error
		handlerEnded bool
	}
	returned := make(chan result, 1)
	go func() {
		resp, err := handlerTransport{h: h}.RoundTrip(req)
		if resp != nil {
			resp.Body.Close()
		}
		returned <- result{err: err, handlerEnded: ended.Load()}
	}()
	<-started
	cancel()
	time.Sleep(100 * time.Millisecond) // time enough for RoundTrip to return if it does not wait
	close(release)
	res := <-returned
	if !errors.Is(res.err, context.Canceled) {
		t.Fatalf("RoundTrip of a cancelled request: %v, want context.Canceled", res.err)
	}
	if !res.handlerEnded {
		t.Fatal("RoundTrip returned while the handler of the cancelled request was still running")
	}
}
