package registry

import (
	"net/http"
	"strings"
	"sync"
)

// uploadOrder serves the requests of one upload session one at a time.
//
// Distribution finishes a request whose client has gone: a commit (PUT
// ?digest=) cut off by a client that then cancels the session (DELETE) is
// served beside that DELETE, and the two race inside distribution. The
// DELETE removes the session's data, the commit then takes the blob's size
// as 0, finds the blob in place and caches it with size 0: the registry
// serves that blob empty (200, Content-Length 0) until its cache is dropped.
// A client's requests on one session are sequential by the protocol, so
// waiting for the one in flight costs a well-behaved client nothing.
type uploadOrder struct {
	mu       sync.Mutex
	sessions map[string]*sessionLock
}

type sessionLock struct {
	sync.Mutex
	users int // requests holding or waiting for it
}

func newUploadOrder() *uploadOrder {
	return &uploadOrder{sessions: map[string]*sessionLock{}}
}

// Middleware serves a request on an upload session once the session's
// requests before it have ended.
func (o *uploadOrder) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := uploadSession(r.URL.Path)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		defer o.lock(id)()
		next.ServeHTTP(w, r)
	})
}

// lock takes the session's lock and returns its release.
func (o *uploadOrder) lock(id string) func() {
	o.mu.Lock()
	l := o.sessions[id]
	if l == nil {
		l = &sessionLock{}
		o.sessions[id] = l
	}
	l.users++
	o.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		o.mu.Lock()
		if l.users--; l.users == 0 {
			delete(o.sessions, id)
		}
		o.mu.Unlock()
	}
}

// uploadSession is the session of a request path
// /v2/<name>/blobs/uploads/<id>; false for any other path (starting an
// upload included).
func uploadSession(p string) (string, bool) {
	const marker = "/blobs/uploads/"
	i := strings.LastIndex(p, marker)
	if i < 0 {
		return "", false
	}
	id := p[i+len(marker):]
	if id == "" || strings.Contains(id, "/") {
		return "", false
	}
	return p[:i] + "/" + id, true
}
