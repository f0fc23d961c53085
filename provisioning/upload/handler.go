package upload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dvcr/dvcr/storage"
)

// Handler serves /upload/<token>; see the package comment for the protocol.
// It reads the token from the request's full path (mount it at "/upload/"
// without http.StripPrefix). It lifts the server's read and write timeouts
// for the uploads it takes (see Options.IdleTimeout).
type Handler struct {
	opts   Options
	mu     sync.Mutex
	tokens map[string]*entry
}

// NewHandler prepares the spool directory and returns a Handler with no
// token registered.
func NewHandler(opts Options) (*Handler, error) {
	opts.setDefaults()
	if err := prepareSpoolDir(opts.SpoolDir); err != nil {
		return nil, err
	}
	return &Handler{opts: opts, tokens: map[string]*entry{}}, nil
}

const msgUnknown = "unknown or expired upload token"

// ServeHTTP answers GET, HEAD, PUT and POST on /upload/<token>.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	token, ok := tokenFromPath(r.URL.Path)
	if !ok {
		reply(w, http.StatusNotFound, msgUnknown)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h.status(w, token)
	case http.MethodPut, http.MethodPost:
		h.upload(w, r, token)
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT, POST")
		reply(w, http.StatusMethodNotAllowed, "method not allowed: use PUT or POST to upload, GET or HEAD to ask")
	}
}

// status answers GET and HEAD: ready (200) or busy (409), with the offset.
func (h *Handler) status(w http.ResponseWriter, token string) {
	e := h.lookup(token)
	if e == nil {
		reply(w, http.StatusNotFound, msgUnknown)
		return
	}
	if e.uploading.Load() {
		setOffset(w, e.progress.Load())
		reply(w, http.StatusConflict, "an upload to this token is running")
		return
	}
	setOffset(w, spoolSize(e.path))
	reply(w, http.StatusOK, "ready")
}

// upload answers PUT and POST: checks, spooling, then the Receiver.
func (h *Handler) upload(w http.ResponseWriter, r *http.Request, token string) {
	e := h.lookup(token)
	if e == nil {
		reply(w, http.StatusNotFound, msgUnknown)
		return
	}
	if h.opts.ReadOnly() {
		h.unavailable(w, "the registry is read-only during garbage collection: retry later")
		return
	}
	cr, err := parseContentRange(r.Header.Get("Content-Range"))
	if err == nil {
		err = checkLength(cr, r.ContentLength)
	}
	if err != nil {
		reply(w, http.StatusBadRequest, err.Error())
		return
	}
	if !e.busy.TryLock() {
		h.opts.Logger.Info("upload: refused: another upload is running", "upload", e.fp)
		reply(w, http.StatusConflict, "an upload to this token is already running")
		return
	}
	defer e.busy.Unlock()
	e.uploading.Store(true)
	defer e.uploading.Store(false)
	defer e.end()
	ctx, recv, ok := e.begin(r.Context())
	if !ok {
		reply(w, http.StatusNotFound, msgUnknown)
		return
	}
	h.spoolAndReceive(ctx, w, r, e, token, cr, recv)
}

// spoolAndReceive runs an upload that holds the token's lock.
func (h *Handler) spoolAndReceive(ctx context.Context, w http.ResponseWriter, r *http.Request,
	e *entry, token string, cr *contentRange, recv Receiver) {
	sp, err := openSpool(e.path, cr == nil)
	if err != nil {
		h.opts.Logger.Error("upload: spool file", "upload", e.fp, "err", err)
		reply(w, http.StatusInternalServerError, "cannot open the spool file: "+err.Error())
		return
	}
	defer sp.close()
	if cr != nil && cr.first != sp.kept {
		setOffset(w, sp.kept)
		w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(sp.kept, 10))
		reply(w, http.StatusRequestedRangeNotSatisfiable, fmt.Sprintf(
			"Content-Range starts at %d but %d bytes are kept: resume from %d", cr.first, sp.kept, sp.kept))
		return
	}
	h.opts.Logger.Info("upload: receiving", "upload", e.fp, "offset", sp.kept)
	if !h.spoolBody(ctx, w, r, e, cr, sp) {
		return
	}
	if cr != nil && cr.total >= 0 && sp.kept < cr.total {
		h.keep(w, e, sp)
		setOffset(w, sp.kept)
		reply(w, http.StatusAccepted, fmt.Sprintf("%d of %d bytes kept: send the rest with Content-Range", sp.kept, cr.total))
		return
	}
	h.receive(ctx, w, r, e, token, sp, recv)
}

// spoolBody copies the request body into the spool file; false when it has
// answered already (the bytes received are kept for a resume then).
func (h *Handler) spoolBody(ctx context.Context, w http.ResponseWriter, r *http.Request,
	e *entry, cr *contentRange, sp *spool) bool {
	rc := http.NewResponseController(w)
	// Unregister must stop a body read blocked on a silent client: an
	// expired read deadline is the only way to interrupt it.
	stop := context.AfterFunc(ctx, func() { _ = rc.SetReadDeadline(time.Now()) })
	defer stop()
	body := &idleReader{r: r.Body, rc: rc, ctx: ctx, idle: h.opts.IdleTimeout}
	start := sp.kept
	limit := int64(-1)
	if cr != nil {
		limit = cr.length()
	}
	e.progress.Store(sp.kept)
	readErr, writeErr := sp.fill(body, limit, e.progress.Store)
	if readErr == nil && writeErr == nil && limit >= 0 {
		readErr = checkRangeEnd(body, sp.kept-start, limit)
	}
	// The server's background read starts once the body is consumed; a
	// deadline left behind would cancel the request's context during Receive.
	_ = rc.SetReadDeadline(time.Time{})
	if readErr != nil || writeErr != nil {
		// What remains of the body is not wanted: without this the server
		// would try to read it (up to 256 KiB) before answering, and wait
		// on a client that stalled or was cut off.
		w.Header().Set("Connection", "close")
	}
	switch {
	case writeErr != nil:
		h.writeFailed(w, e, sp, writeErr)
	case readErr != nil && e.isGone():
		reply(w, http.StatusNotFound, "upload cancelled: "+msgUnknown)
	case readErr != nil:
		h.keep(w, e, sp)
		h.opts.Logger.Warn("upload: interrupted", "upload", e.fp, "kept", sp.kept, "err", readErr)
		setOffset(w, sp.kept)
		reply(w, http.StatusBadRequest, fmt.Sprintf(
			"upload interrupted (%v): %d bytes kept, resume with Content-Range: bytes %d-...", readErr, sp.kept, sp.kept))
	default:
		return true
	}
	return false
}

// checkRangeEnd verifies that a body with a Content-Range carried exactly
// the bytes announced: not fewer (a chunked body may end early) nor more.
func checkRangeEnd(body io.Reader, got, want int64) error {
	if got < want {
		return fmt.Errorf("body ended after %d of the %d bytes of Content-Range", got, want)
	}
	var one [1]byte
	if n, _ := body.Read(one[:]); n > 0 {
		return fmt.Errorf("body longer than the %d bytes of Content-Range", want)
	}
	return nil
}

// writeFailed answers a failure to write the spool file. On a full volume
// the bytes received are released at once: kept, they would hold the space
// the registry and a garbage collection need.
func (h *Handler) writeFailed(w http.ResponseWriter, e *entry, sp *spool, err error) {
	if diskFull(err) {
		h.opts.Logger.Error("upload: spool write failed, released", "upload", e.fp, "received", sp.kept, "err", err)
		sp.remove()
		setOffset(w, 0)
		reply(w, http.StatusInsufficientStorage, fmt.Sprintf(
			"%v (spool directory %s); the upload was discarded: send it again from the start",
			storage.NewFullError(h.opts.SpoolDir), h.opts.SpoolDir))
		return
	}
	h.keep(w, e, sp)
	h.opts.Logger.Error("upload: spool write failed", "upload", e.fp, "kept", sp.kept, "err", err)
	setOffset(w, sp.kept)
	reply(w, http.StatusInternalServerError, fmt.Sprintf("writing the spool file failed: %v", err))
}

// keep makes the spooled bytes durable before their count is announced.
func (h *Handler) keep(w http.ResponseWriter, e *entry, sp *spool) {
	if err := sp.keep(); err != nil {
		h.opts.Logger.Warn("upload: keeping the bytes so far", "upload", e.fp, "kept", sp.kept, "err", err)
	}
}

// receive hands the complete spool file to the Receiver and answers with
// its outcome.
func (h *Handler) receive(ctx context.Context, w http.ResponseWriter, r *http.Request,
	e *entry, token string, sp *spool, recv Receiver) {
	if err := sp.rewind(); err != nil {
		reply(w, http.StatusInternalServerError, "cannot read the spool file: "+err.Error())
		return
	}
	// The answer waits for the import, which may outlast the server's
	// WriteTimeout; that deadline would lose the outcome.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
	h.opts.Logger.Info("upload: complete: importing", "upload", e.fp, "bytes", sp.kept)
	err := recv.Receive(ctx, sp.f, sp.kept, uploadName(r))
	if err == nil {
		sp.remove()
		h.forget(token, e)
		h.opts.Logger.Info("upload: imported", "upload", e.fp)
		reply(w, http.StatusCreated, fmt.Sprintf("upload complete: %d bytes", sp.kept))
		return
	}
	msg := strings.ReplaceAll(err.Error(), token, "<token>")
	status := receiveStatus(err)
	if e.isGone() {
		status = http.StatusNotFound
	}
	h.opts.Logger.Warn("upload: import failed", "upload", e.fp, "status", status, "err", msg)
	// A 503, or an uploader gone before the outcome (the import was
	// cancelled with its request), keeps the bytes: a retry need not send
	// them again.
	if status == http.StatusServiceUnavailable || r.Context().Err() != nil {
		h.keep(w, e, sp)
		setOffset(w, sp.kept)
		h.unavailable(w, msg)
		return
	}
	sp.remove()
	reply(w, status, msg)
}

// unavailable answers 503 with Retry-After in whole seconds.
func (h *Handler) unavailable(w http.ResponseWriter, msg string) {
	secs := int64(math.Ceil(h.opts.RetryAfter.Seconds()))
	w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
	reply(w, http.StatusServiceUnavailable, msg)
}

// idleReader reads a request body, failing when the uploader sends nothing
// for idle or ctx ends. Each Read moves the connection's read deadline on,
// which also lifts the server's ReadTimeout that would cut long uploads.
type idleReader struct {
	r    io.Reader
	rc   *http.ResponseController
	ctx  context.Context
	idle time.Duration
}

var errIdle = errors.New("no data received within the idle timeout")

func (b *idleReader) Read(p []byte) (int, error) {
	dl := b.rc.SetReadDeadline(time.Now().Add(b.idle))
	// Checked after moving the deadline: a cancel that came before it
	// would otherwise be undone and the Read below left waiting.
	if err := b.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := b.r.Read(p)
	if err != nil && dl == nil && b.ctx.Err() == nil && isTimeout(err) {
		err = errIdle
	}
	return n, err
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// setOffset announces the bytes kept of the upload.
func setOffset(w http.ResponseWriter, n int64) {
	w.Header().Set("Upload-Offset", strconv.FormatInt(n, 10))
}

// reply answers with a one-line plain-text message (never a token).
func reply(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}
