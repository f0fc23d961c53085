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
	"github.com/dvcr/dvcr/importer/diskformat"
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

// download answers GET /api/download/{kind}/{name}: the disk file of a
// Ready image as stored, or with ?format=raw as a raw disk (downloadRaw).
func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	format := r.URL.Query().Get("format")
	if format != "" && format != exporter.FormatRaw {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("format %q: want raw, or none for the disk file as stored", format))
		return
	}
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
	switch {
	case format == "":
		s.streamDownload(w, r, host, repository, false)
	case row.Format == string(diskformat.Raw):
		// Already raw: nothing to convert, so no temporary file; a
		// compressed one is decompressed on the way.
		s.streamDownload(w, r, host, repository, true)
	default:
		s.downloadRaw(w, r, obj, host, repository)
	}
}

// streamDownload streams the disk file to the browser, as it was imported
// (with decompress, the inner file of a gz, xz or zstd one):
// Content-Disposition names the file, and Content-Length is its size from
// the layer's tar header (none when decompressing), so the browser shows
// real progress. Nothing is held in memory but a buffer. The layer digest
// is checked as the bytes go; the last byte is held back until it matched,
// and a mismatch (or a registry lost for good) aborts the connection, so
// the browser shows a failed download rather than a complete wrong file.
func (s *Server) streamDownload(w http.ResponseWriter, r *http.Request, host, repository string, decompress bool) {
	out := &heldWriter{w: w}
	opts := s.exportOptions(host)
	opts.Stdout, opts.Decompress = out, decompress
	opts.Begin = func(name string, size int64) error {
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Disposition", attachment(name))
		if size >= 0 {
			h.Set("Content-Length", strconv.FormatInt(size, 10))
		}
		return nil
	}
	_, err := exporter.Export(r.Context(), repository, "-", opts)
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

// attachment is the Content-Disposition that saves the response as name.
func attachment(name string) string {
	return mime.FormatMediaType("attachment", map[string]string{"filename": name})
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

// heldWriter passes the bytes on but the last one so far, which release
// writes once the digest matched. Holding the last byte of what came, not
// of a size announced, works for a decompressed file too, whose size is
// not known before its end.
type heldWriter struct {
	w     io.Writer
	last  []byte // none before the first write, then one byte
	wrote bool
}

func (h *heldWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := h.pass(h.last); err != nil {
		return 0, err
	}
	if err := h.pass(p[:len(p)-1]); err != nil {
		return 0, err
	}
	h.last = append(h.last[:0], p[len(p)-1])
	return len(p), nil
}

func (h *heldWriter) pass(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	h.wrote = true
	_, err := h.w.Write(b)
	return err
}

// release writes the held byte and flushes.
func (h *heldWriter) release() error {
	if err := h.pass(h.last); err != nil {
		return err
	}
	h.last = h.last[:0]
	if f, ok := h.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}
