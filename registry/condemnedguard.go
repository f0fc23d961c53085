package registry

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"

	"github.com/distribution/distribution/v3/registry/api/errcode"
	v2 "github.com/distribution/distribution/v3/registry/api/v2"
	"github.com/gorilla/mux"
	"github.com/opencontainers/go-digest"
)

// maxManifestSize is distribution's limit on a manifest PUT's body: a
// larger one is refused by the registry, so the guard need not read it.
const maxManifestSize = 4 << 20

// condemnedGuard answers for the condemned entries while they are deleted
// after a garbage collection window, so that the registry behaves as if
// they were already gone:
//
//   - GET and HEAD of a condemned blob, or of a condemned manifest by
//     digest, are 404;
//   - a mount from a condemned blob becomes a plain upload (202);
//   - an upload or a manifest PUT of condemned content is served with the
//     entry locked against its deletion, and takes it out of the set when it
//     succeeds: the content is written again and stays;
//   - a manifest PUT that references a condemned blob or manifest is
//     refused with MANIFEST_BLOB_UNKNOWN, which is what the registry answers
//     once it is deleted (distribution's caches may still describe it until
//     the run drops them).
type condemnedGuard struct {
	set    *Condemned
	router *mux.Router
}

func (g *condemnedGuard) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.set.Active() {
			next.ServeHTTP(w, r)
			return
		}
		var match mux.RouteMatch
		if !g.router.Match(r, &match) || match.Route == nil {
			next.ServeHTTP(w, r)
			return
		}
		g.serve(w, r, match.Route.GetName(), match.Vars, next)
	})
}

func (g *condemnedGuard) serve(w http.ResponseWriter, r *http.Request, route string, vars map[string]string, next http.Handler) {
	name := vars["name"]
	reading := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch {
	case route == v2.RouteNameBlob && reading:
		if g.set.blob(digest.Digest(vars["digest"])) != nil {
			_ = errcode.ServeJSON(w, errcode.ErrorCodeBlobUnknown.WithDetail(vars["digest"]))
			return
		}
	case route == v2.RouteNameManifest && reading:
		d := digest.Digest(vars["reference"])
		if g.set.blob(d) != nil || g.set.revision(name, d) != nil {
			_ = errcode.ServeJSON(w, errcode.ErrorCodeManifestUnknown.WithDetail(vars["reference"]))
			return
		}
	case route == v2.RouteNameManifest && r.Method == http.MethodPut:
		g.putManifest(w, r, name, next)
		return
	case route == v2.RouteNameBlobUpload && r.Method == http.MethodPost:
		g.refuseMount(r)
		if d := r.URL.Query().Get("digest"); d != "" {
			g.commit(w, r, digest.Digest(d), next)
			return
		}
	case route == v2.RouteNameBlobUploadChunk && r.Method == http.MethodPut:
		g.commit(w, r, digest.Digest(r.URL.Query().Get("digest")), next)
		return
	}
	next.ServeHTTP(w, r)
}

// refuseMount turns a mount from a condemned blob into a plain upload, as
// distribution does when the blob to mount is unknown.
func (g *condemnedGuard) refuseMount(r *http.Request) {
	q := r.URL.Query()
	if m := q.Get("mount"); m == "" || g.set.blob(digest.Digest(m)) == nil {
		return
	}
	q.Del("mount")
	q.Del("from")
	r.URL.RawQuery = q.Encode()
}

// commit serves an upload's last request; when it writes condemned blob d,
// the blob's deletion waits and a success resurrects it.
func (g *condemnedGuard) commit(w http.ResponseWriter, r *http.Request, d digest.Digest, next http.Handler) {
	e := g.set.blob(d)
	if e == nil {
		next.ServeHTTP(w, r)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	rec := &statusRecorder{ResponseWriter: w}
	next.ServeHTTP(rec, r)
	if rec.status == http.StatusCreated {
		g.set.resurrect(d, "", "")
	}
}

// putManifest refuses a manifest referencing condemned content and
// resurrects the manifest itself when it is condemned and stored again.
func (g *condemnedGuard) putManifest(w http.ResponseWriter, r *http.Request, name string, next http.Handler) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxManifestSize+1))
	if err != nil {
		_ = errcode.ServeJSON(w, errcode.ErrorCodeManifestInvalid.WithDetail(err.Error()))
		return
	}
	r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), r.Body))
	if len(body) > maxManifestSize {
		next.ServeHTTP(w, r)
		return
	}
	for _, ref := range manifestReferences(body) {
		if g.set.blob(ref) != nil || g.set.revision(name, ref) != nil {
			_ = errcode.ServeJSON(w, errcode.ErrorCodeManifestBlobUnknown.WithMessage(
				"blob unknown to registry: removed by garbage collection").WithDetail(ref))
			return
		}
	}
	d := digest.FromBytes(body)
	blob, revision := g.set.blob(d), g.set.revision(name, d)
	for _, e := range []*condemnedEntry{blob, revision} {
		if e != nil {
			e.mu.Lock()
			defer e.mu.Unlock()
		}
	}
	rec := &statusRecorder{ResponseWriter: w}
	next.ServeHTTP(rec, r)
	if rec.status == http.StatusCreated && (blob != nil || revision != nil) {
		g.set.resurrect(d, name, d)
	}
}

// manifestReferences are the digests a manifest or index names: config,
// layers, child manifests, subject. Content that does not parse names
// nothing; distribution refuses it.
func manifestReferences(body []byte) []digest.Digest {
	type descriptor struct {
		Digest digest.Digest `json:"digest"`
	}
	var m struct {
		Config    *descriptor  `json:"config"`
		Subject   *descriptor  `json:"subject"`
		Layers    []descriptor `json:"layers"`
		Manifests []descriptor `json:"manifests"`
		Blobs     []descriptor `json:"blobs"`
	}
	if json.Unmarshal(body, &m) != nil {
		return nil
	}
	var refs []digest.Digest
	for _, d := range []*descriptor{m.Config, m.Subject} {
		if d != nil {
			refs = append(refs, d.Digest)
		}
	}
	for _, list := range [][]descriptor{m.Layers, m.Manifests, m.Blobs} {
		for _, d := range list {
			refs = append(refs, d.Digest)
		}
	}
	return refs
}

// statusRecorder keeps the status code a handler answered with (0 while
// it has written nothing) and the body bytes written; Unwrap lets
// http.ResponseController reach the connection.
type statusRecorder struct {
	http.ResponseWriter
	status  int
	written int64
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.written += int64(n)
	return n, err
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// answered is the status the client got: 200 when the handler wrote
// nothing, as net/http answers then.
func (s *statusRecorder) answered() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}
