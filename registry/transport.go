package registry

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"sync"
)

// Transport returns an http.RoundTripper that serves requests with the
// registry's own handler, in process: DVCR's provisioning controller pushes
// through it, so the write gate, the repository policy and the caches are
// those of the listener, without a network hop, TLS or an address to reach,
// and without credentials: the configured authentication (auth.htpasswd)
// lets these requests through (see inProcessAuth).
// Requests for any host go to this registry.
func (s *Server) Transport() http.RoundTripper { return handlerTransport{h: s.Handler()} }

type handlerTransport struct{ h http.Handler }

// RoundTrip runs the handler in a goroutine and returns as soon as it has
// written its header; the body streams through a pipe, so a response is
// never held in memory whole.
//
// A request cancelled before the header returns only once its handler has
// ended. Distribution goes on with a request whose client is gone, and a
// client's next step after a cancelled request is often to undo it: the
// importer cancels its upload (DELETE) when the commit (PUT) fails. Served
// at the same time, those two race inside distribution, and the commit can
// then record the blob with size 0 in the blob descriptor cache: the
// registry serves the blob empty (200, Content-Length 0) until the cache is
// dropped. Over the network the server cannot wait like this; in process
// it can, so requests of one client stay in the order it sent them.
func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = serverSide(req)
	pr, pw := io.Pipe()
	w := &pipeResponse{header: http.Header{}, req: req, body: pw, ready: make(chan struct{})}
	w.resp = &http.Response{Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Body: pr, ContentLength: -1, Request: req}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			w.WriteHeader(http.StatusOK) // a handler that wrote nothing
			_ = pw.Close()
		}()
		t.h.ServeHTTP(w, req)
	}()
	select {
	case <-w.ready:
		return w.resp, nil
	case <-req.Context().Done():
		// The handler's writes fail from now on, and so do its reads of
		// the body, which a RoundTripper closes anyway (in a goroutine:
		// closing a body being read may wait for the read); it ends, and
		// so does this.
		_ = pr.CloseWithError(req.Context().Err())
		go req.Body.Close()
		<-done
		return nil, req.Context().Err()
	}
}

// serverSide copies req with what a server fills in and handlers rely on.
func serverSide(req *http.Request) *http.Request {
	r := req.WithContext(context.WithValue(req.Context(), inProcessKey{}, true))
	if r.Body == nil {
		r.Body = http.NoBody
	}
	r.RequestURI = r.URL.RequestURI()
	r.RemoteAddr = "127.0.0.1:0" // in process
	return r
}

// pipeResponse is the http.ResponseWriter of an in-process request.
type pipeResponse struct {
	header http.Header
	req    *http.Request
	body   *io.PipeWriter
	once   sync.Once
	ready  chan struct{}
	resp   *http.Response
}

func (w *pipeResponse) Header() http.Header { return w.header }

func (w *pipeResponse) WriteHeader(status int) {
	w.once.Do(func() {
		w.resp.StatusCode = status
		w.resp.Status = strconv.Itoa(status) + " " + http.StatusText(status)
		w.resp.Header = w.header.Clone()
		if n, err := strconv.ParseInt(w.header.Get("Content-Length"), 10, 64); err == nil {
			w.resp.ContentLength = n
		}
		if w.req.Method == http.MethodHead {
			w.resp.Body = http.NoBody
		}
		close(w.ready)
	})
}

func (w *pipeResponse) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if w.req.Method == http.MethodHead {
		return len(b), nil
	}
	return w.body.Write(b)
}
