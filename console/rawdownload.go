package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"syscall"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/dvcr/dvcr/exporter"
)

// DefaultRawConversions is how many "Download raw" conversions run at once
// unless Options.RawConversions says otherwise.
const DefaultRawConversions = 2

// tempPattern names the temporary files of raw downloads in the download
// directory, so an operator can tell them from others there.
const tempPattern = "dvcr-console-*.raw"

// downloadRaw answers ?format=raw for an image that is not raw: the
// exporter converts it (qcow2, vmdk, vdi) to a sparse raw
// file, which needs a seekable file, not a stream. So the console converts
// into a temporary file in the download directory first, and only once the
// conversion succeeded, layer digest checked, does it answer, with
// http.ServeContent: Content-Length is the virtual size and Range requests
// work, so a browser can resume. Any failure is thus an HTTP error with its
// reason, never a cut download. The file is unlinked as soon as it is open
// for serving and removed on every failure, so neither a finished, a
// failed nor an abandoned download leaves it behind.
func (s *Server) downloadRaw(w http.ResponseWriter, r *http.Request, obj *unstructured.Unstructured, host, repository string) {
	if !s.acquireConversion(r.Context()) {
		return // the browser gave up while waiting: nobody to answer
	}
	defer s.releaseConversion()
	f, name, res, err := s.convertRaw(r.Context(), host, repository)
	if err != nil {
		writeRawError(w, err, s.downloadDir())
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", attachment(name))
	// The conversion is a function of the manifest: its digest validates a
	// resumed download (If-Range), as does the image's creation time,
	// which a deleted and recreated image does not share.
	h.Set("ETag", strconv.Quote(res.Digest+".raw"))
	http.ServeContent(w, r, "", obj.GetCreationTimestamp().Time, f)
}

// convertRaw exports the image as raw into a new temporary file and returns
// it open for reading and already unlinked (its space is freed when it is
// closed, whatever happens to the console meanwhile), with the name the
// exporter gives the raw file.
func (s *Server) convertRaw(ctx context.Context, host, repository string) (*os.File, string, *exporter.Result, error) {
	tmp, err := os.CreateTemp(s.downloadDir(), tempPattern)
	if err != nil {
		return nil, "", nil, fmt.Errorf("%w: %v", errDownloadDir, err)
	}
	path := tmp.Name()
	_ = tmp.Close()
	defer os.Remove(path)
	var name string
	opts := s.exportOptions(host)
	opts.Format = exporter.FormatRaw
	opts.Begin = func(n string, _ int64) error {
		name = n
		return nil
	}
	res, err := exporter.Export(ctx, repository, path, opts)
	if err != nil {
		return nil, "", nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, "", nil, fmt.Errorf("%w: %v", errDownloadDir, err)
	}
	return f, name, res, nil
}

// errDownloadDir: the download directory cannot hold a temporary file.
var errDownloadDir = errors.New("the console's download directory (--download-dir)")

// writeRawError answers for a raw download that failed: every failure of
// it comes before the first byte.
func writeRawError(w http.ResponseWriter, err error, dir string) {
	switch {
	case errors.Is(err, exporter.ErrUnsupported):
		writeError(w, http.StatusUnprocessableEntity, err.Error()+"; Download (not raw) gives the disk file as stored")
	case errors.Is(err, syscall.ENOSPC):
		writeError(w, http.StatusInsufficientStorage, fmt.Sprintf(
			"%v: the console converts into %s (--download-dir), which needs free space for the image's allocated data", err, dir))
	case errors.Is(err, errDownloadDir):
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		writeDownloadError(w, err)
	}
}

// acquireConversion waits for one of the conversion slots, which bound the
// space raw downloads take in the download directory; it is false when ctx
// ended first. Waiting rather than refusing suits a browser link: a
// refusal there is a failed download without its reason, and a waiting
// request holds no disk space.
func (s *Server) acquireConversion(ctx context.Context) bool {
	select {
	case s.conversions <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *Server) releaseConversion() { <-s.conversions }

// downloadDir is where raw downloads are converted.
func (s *Server) downloadDir() string {
	if s.opts.DownloadDir != "" {
		return s.opts.DownloadDir
	}
	return os.TempDir()
}
