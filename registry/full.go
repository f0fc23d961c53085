package registry

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"

	"github.com/dvcr/dvcr/storage"
)

// StatusInsufficientStorage is how a write refused for lack of space is
// answered, with an OCI error whose code is FullErrorCode.
const StatusInsufficientStorage = http.StatusInsufficientStorage

// FullErrorCode is the OCI error code of a write refused for lack of space:
// one the distribution spec lists, that clients report without retrying
// (retrying cannot help until an operator frees space).
const FullErrorCode = "DENIED"

// maxDrain bounds how much of a refused request's body is read before the
// 507 is sent: a client still sending a chunk would otherwise see its
// connection reset instead of the answer.
const maxDrain = 64 << 20

// spaceGuard turns distribution's 500 for a write that failed for lack of
// space into 507 Insufficient Storage saying how much is free, and releases
// the upload at once: its partial data would otherwise hold the space until
// upload purging (a week).
type spaceGuard struct {
	root   string // the filesystem driver's root, for the message
	driver storagedriver.StorageDriver
	log    *slog.Logger
}

func (g *spaceGuard) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !IsWrite(r) {
			next.ServeHTTP(w, r)
			return
		}
		ctx, note := storage.WithSpaceNote(r.Context())
		r = r.WithContext(ctx)
		var once sync.Once
		release := func() { once.Do(func() { g.release(context.WithoutCancel(ctx), note) }) }
		fw := &fullResponse{ResponseWriter: w, note: note, req: r, root: g.root, release: release}
		next.ServeHTTP(fw, r)
		if note.Full() {
			release()
		}
	})
}

// release deletes the uploads whose files could not be written, closing
// their files first so that the space is freed.
func (g *spaceGuard) release(ctx context.Context, note *storage.SpaceNote) {
	note.CancelWriters(ctx)
	paths := note.Paths()
	done := map[string]bool{}
	for _, p := range paths {
		dir, ok := uploadDir(p)
		if !ok || done[dir] {
			continue
		}
		done[dir] = true
		if err := g.driver.Delete(ctx, dir); err != nil {
			g.log.Warn("releasing an upload refused for lack of space", "upload", dir, "err", err)
		}
	}
}

// uploadDir is the directory of the upload a storage path belongs to:
// .../_uploads/<uuid>.
func uploadDir(p string) (string, bool) {
	i := strings.Index(p, "/_uploads/")
	if i < 0 {
		return "", false
	}
	rest := p[i+len("/_uploads/"):]
	uuid, _, _ := strings.Cut(rest, "/")
	if uuid == "" {
		return "", false
	}
	return p[:i] + "/_uploads/" + uuid, true
}

// fullResponse replaces an error answer by the 507 when the request's
// writes failed for lack of space.
type fullResponse struct {
	http.ResponseWriter
	note     *storage.SpaceNote
	req      *http.Request
	root     string
	release  func() // deletes the uploads that did not fit
	started  bool
	replaced bool
}

func (f *fullResponse) WriteHeader(code int) {
	if f.started {
		return
	}
	f.started = true
	if code < 500 || !f.note.Full() {
		f.ResponseWriter.WriteHeader(code)
		return
	}
	f.replaced = true
	_, _ = io.Copy(io.Discard, io.LimitReader(f.req.Body, maxDrain))
	// Released first: the message tells the space there is for a retry.
	f.release()
	WriteFull(f.ResponseWriter, storage.NewFullError(f.root))
}

func (f *fullResponse) Write(b []byte) (int, error) {
	if !f.started {
		f.WriteHeader(http.StatusOK)
	}
	if f.replaced {
		return len(b), nil
	}
	return f.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (f *fullResponse) Unwrap() http.ResponseWriter { return f.ResponseWriter }

// WriteFull answers 507 with the OCI error of a full volume.
func WriteFull(w http.ResponseWriter, err error) {
	body, _ := json.Marshal(map[string]any{"errors": []map[string]string{{"code": FullErrorCode, "message": err.Error()}}})
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(StatusInsufficientStorage)
	_, _ = w.Write(body)
}
