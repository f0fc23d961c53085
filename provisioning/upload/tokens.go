package upload

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
)

// entry is a registered token.
type entry struct {
	fp   string // fingerprint, for log lines
	path string // spool file

	// busy is held by the request that uploads to the token; a second one
	// fails its TryLock and gets 409.
	busy sync.Mutex
	// uploading is true while busy is held by an upload. GET reads it
	// instead of trying busy: a GET holding busy for a moment would make an
	// upload arriving at that moment fail with 409 and lose its body.
	uploading atomic.Bool

	mu     sync.Mutex // guards recv, cancel, gone
	recv   Receiver
	cancel context.CancelFunc // of the running upload, nil if none
	gone   bool               // unregistered or used: its requests get 404

	progress atomic.Int64 // bytes spooled by the running upload, for GET
}

// begin marks an upload as running; false if the token is gone. The
// returned context ends on Unregister or when the request's does.
func (e *entry) begin(parent context.Context) (context.Context, Receiver, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.gone {
		return nil, nil, false
	}
	ctx, cancel := context.WithCancel(parent)
	e.cancel = cancel
	return ctx, e.recv, true
}

// end marks the running upload finished and removes the spool file if the
// token went away meanwhile (Unregister left that to the upload).
func (e *entry) end() {
	e.mu.Lock()
	if e.cancel != nil {
		e.cancel()
		e.cancel = nil
	}
	gone := e.gone
	e.mu.Unlock()
	if gone {
		_ = os.Remove(e.path)
	}
}

// retire makes the token gone and cancels a running upload.
func (e *entry) retire() {
	e.mu.Lock()
	e.gone = true
	if e.cancel != nil {
		e.cancel()
	}
	e.mu.Unlock()
}

func (e *entry) isGone() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.gone
}

// Register makes token valid for one upload to r (the token's resource is
// in WaitForUserUpload). Registering a token again replaces its Receiver
// and keeps its spooled bytes, so after a restart the controller registers
// the token it published and an interrupted upload can still resume. A
// token NewToken could not have made (charset, length) never matches a
// request: it is logged and ignored.
func (h *Handler) Register(token string, r Receiver) {
	if !validToken(token) {
		h.opts.Logger.Warn("upload: not registered: malformed token", "upload", fingerprint(token))
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if e, ok := h.tokens[token]; ok {
		e.mu.Lock()
		e.recv = r
		e.mu.Unlock()
		return
	}
	h.tokens[token] = &entry{fp: fingerprint(token), path: spoolPath(h.opts.SpoolDir, token), recv: r}
	h.opts.Logger.Info("upload: registered", "upload", fingerprint(token))
}

// Unregister ends a token (expired, resource deleted, import done): later
// requests get 404, a running upload is cancelled (its request context, and
// the body read is interrupted; the uploader gets 404) and the spool file
// is removed. A token is not meant to be registered again after this.
func (h *Handler) Unregister(token string) {
	h.mu.Lock()
	e := h.tokens[token]
	delete(h.tokens, token)
	h.mu.Unlock()
	if e == nil {
		if validToken(token) {
			_ = os.Remove(spoolPath(h.opts.SpoolDir, token)) // left by an earlier process
		}
		return
	}
	e.retire()
	if e.busy.TryLock() {
		_ = os.Remove(e.path)
		e.busy.Unlock()
	} // else the running upload removes it in end()
	h.opts.Logger.Info("upload: unregistered", "upload", e.fp)
}

// lookup returns the entry of a registered token, nil if unknown.
func (h *Handler) lookup(token string) *entry {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.tokens[token]
}

// forget drops e after a successful upload, unless the token was
// registered anew meanwhile.
func (h *Handler) forget(token string, e *entry) {
	e.retire()
	h.mu.Lock()
	if h.tokens[token] == e {
		delete(h.tokens, token)
	}
	h.mu.Unlock()
}

// Sweep removes the spool files of tokens not registered now: those an
// earlier process left for resources deleted while it was down. Call it
// after the tokens still waiting for an upload have been registered.
func (h *Handler) Sweep() (removed int, err error) {
	names, err := filepath.Glob(filepath.Join(h.opts.SpoolDir, "upload-*.part"))
	if err != nil {
		return 0, err
	}
	live := map[string]bool{}
	h.mu.Lock()
	for _, e := range h.tokens {
		live[e.path] = true
	}
	h.mu.Unlock()
	for _, p := range names {
		if live[p] || !strings.HasSuffix(p, ".part") {
			continue
		}
		if rerr := os.Remove(p); rerr == nil {
			removed++
		} else if !os.IsNotExist(rerr) {
			err = rerr
		}
	}
	return removed, err
}
