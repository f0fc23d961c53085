package console

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/dvcr/dvcr/exporter"
	"github.com/dvcr/dvcr/importer/registryclient"
)

// Registry is how the console reaches DVCR's registry to read images, as
// `dvcr export` does: it serves the "Download" action.
type Registry struct {
	// Address is host:port or a URL of DVCR's registry as this machine
	// reaches it (say a `kubectl port-forward` to DVCR's Service, which
	// RBAC allows or not); "" uses the host of the image's
	// status.target.registryURL, reachable from inside the cluster.
	Address   string
	Insecure  bool   // plain HTTP
	CABundle  []byte // trusted besides the system's roots
	AuthFile  string // docker config.json with DVCR's credentials
	Transport http.RoundTripper
}

// download streams the disk file of a Ready image to the browser, as it
// was imported: Content-Disposition names the file as stored, and
// Content-Length is its size from the layer's tar header, so the browser
// shows real progress. Nothing is held in memory but a buffer. The layer
// digest is checked as the bytes go; the last byte is held back until it
// matched, and a mismatch (or a registry lost for good) aborts the
// connection, so the browser shows a failed download rather than a
// complete wrong file.
func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	obj, err := s.getImage(r)
	if err != nil {
		writeAPIError(w, err)
		return
	}
	row := rowOf(obj)
	if row.Phase != "Ready" || row.Registry == "" {
		writeAPIError(w, fmt.Errorf("%w: %s is %q", ErrNotReady, obj.GetName(), row.Phase))
		return
	}
	host, repository, ok := strings.Cut(row.Registry, "/")
	if !ok {
		writeAPIError(w, fmt.Errorf("%w: %s: registry URL %q", ErrNotReady, obj.GetName(), row.Registry))
		return
	}
	out := &heldWriter{w: w}
	opts := s.exportOptions(host)
	opts.Stdout = out
	opts.Begin = func(name string, size int64) error {
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
		h.Set("Content-Length", strconv.FormatInt(size, 10))
		out.left = size - 1 // the last byte waits for the digest
		return nil
	}
	_, err = exporter.Export(r.Context(), repository, "-", opts)
	switch {
	case err == nil:
		if err := out.release(); err != nil {
			panic(http.ErrAbortHandler)
		}
	case out.wrote:
		// The status line and part of the file are gone: only a cut
		// connection tells the browser the download failed.
		panic(http.ErrAbortHandler)
	default:
		for _, k := range []string{"Content-Type", "Content-Disposition", "Content-Length"} {
			w.Header().Del(k)
		}
		writeDownloadError(w, err)
	}
}

// exportOptions reaches the registry at Registry.Address when it is set,
// otherwise at the image's in-cluster host through the API server's proxy
// to DVCR's Service (serviceProxy).
func (s *Server) exportOptions(host string) exporter.Options {
	reg := s.opts.Registry
	opts := exporter.Options{
		Registry: reg.Address, RegistryHost: host, Insecure: reg.Insecure, CABundle: reg.CABundle,
		AuthFile: reg.AuthFile, RegistryTransport: reg.Transport,
	}
	if opts.Registry == "" {
		opts.Registry = host
		if opts.RegistryTransport == nil {
			opts.RegistryTransport = s.proxy
		}
	}
	return opts
}

// writeDownloadError answers for an export that failed before its first
// byte.
func writeDownloadError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, exporter.ErrRepositoryNotFound), errors.Is(err, exporter.ErrTagNotFound), errors.Is(err, registryclient.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, registryclient.ErrUnauthorized):
		writeError(w, http.StatusForbidden, err.Error())
	case errors.Is(err, exporter.ErrNotDiskImage):
		writeError(w, http.StatusUnprocessableEntity, err.Error())
	default:
		writeAPIError(w, err)
	}
}

// heldWriter passes the bytes on but the last one (left counts the bytes
// before it), which release writes once the digest matched.
type heldWriter struct {
	w     io.Writer
	left  int64
	held  []byte
	wrote bool
}

func (h *heldWriter) Write(p []byte) (int, error) {
	k := int64(len(p))
	if k > h.left {
		k = max(h.left, 0)
	}
	h.held = append(h.held, p[k:]...)
	if len(h.held) > 1 {
		return 0, fmt.Errorf("console: the disk file is longer than its tar header says")
	}
	if k == 0 {
		return len(p), nil
	}
	h.wrote = true
	n, err := h.w.Write(p[:k])
	h.left -= int64(n)
	if err != nil {
		return n, err
	}
	return len(p), nil
}

// release writes the held byte and flushes.
func (h *heldWriter) release() error {
	if len(h.held) > 0 {
		h.wrote = true
		if _, err := h.w.Write(h.held); err != nil {
			return err
		}
	}
	if f, ok := h.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}
