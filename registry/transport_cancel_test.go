package registry

import (
	"context"
	"errors"
	"io"
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

// TestTransportCancelEndsABodyRead: a handler blocked reading the body of a
// cancelled request (an upload whose sender stalls) is not waited for
// forever: the body is closed, its read fails, the handler ends.
func TestTransportCancelEndsABodyRead(t *testing.T) {
	body, stalled := io.Pipe() // nothing is ever written
	defer stalled.Close()
	started := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		if _, err := io.Copy(io.Discard, r.Body); err == nil {
			t.Error("the read of a cancelled request's body did not fail")
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, "http://dvcr.local/v2/cvi/x/blobs/uploads/u", body)
	if err != nil {
		t.Fatal(err)
	}
	returned := make(chan error, 1)
	go func() {
		_, err := handlerTransport{h: h}.RoundTrip(req)
		returned <- err
	}()
	<-started
	cancel()
	select {
	case err := <-returned:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("RoundTrip: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RoundTrip of a cancelled request waits for a body that never comes")
	}
}
