package console

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// UploadResult is the body of PUT /api/upload/{kind}/{name}: what the
// image's upload endpoint answered.
type UploadResult struct {
	Status  int    `json:"status"`
	Message string `json:"message,omitempty"`
	Target  string `json:"target"` // the upload URL, without its token
}

// uploadTransport streams request bodies of any size: no overall timeout,
// only bounds on connecting and on the answer's first byte after the body.
func uploadTransport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = 10 * time.Minute // the endpoint checks the image before answering
	return t
}

// upload streams the request body, the file the browser reads from disk
// piece by piece, to the upload URL in the image's status: the external
// one when the platform publishes it, else the in-cluster one (a console
// run inside the cluster). The console never forwards to a URL the request
// names, so it cannot be turned against other addresses.
func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	obj, err := s.getImage(r)
	if err != nil {
		writeAPIError(w, err)
		return
	}
	target := uploadTarget(rowOf(obj))
	if target == "" {
		writeAPIError(w, fmt.Errorf("%w: %s is %q; wait until it is WaitForUserUpload", ErrNoUploadURL, obj.GetName(), rowOf(obj).Phase))
		return
	}
	result, err := s.forwardUpload(r, target)
	if err != nil {
		writeJSON(w, http.StatusBadGateway, apiErrorBody{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, result)
}

func uploadTarget(row Row) string {
	if row.UploadURLs == nil {
		return ""
	}
	if row.UploadURLs.External != "" {
		return row.UploadURLs.External
	}
	return row.UploadURLs.InCluster
}

// forwardUpload sends the body on; the endpoint's refusals (409 while
// another upload runs, 422 for a file that is no disk image, 507 when the
// registry's disk is full) come back as its status and message.
func (s *Server) forwardUpload(r *http.Request, target string) (*UploadResult, error) {
	out, err := http.NewRequestWithContext(r.Context(), http.MethodPut, target, r.Body)
	if err != nil {
		return nil, fmt.Errorf("console: upload request: %w", err)
	}
	out.ContentLength = r.ContentLength
	if cr := r.Header.Get("Content-Range"); cr != "" {
		out.Header.Set("Content-Range", cr)
	}
	resp, err := s.uploads.Do(out)
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err // its text holds the whole URL, token included
	}
	if err != nil {
		return nil, fmt.Errorf("upload to %s: %w", redactToken(target), err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	return &UploadResult{Status: resp.StatusCode, Message: strings.TrimSpace(string(msg)), Target: redactToken(target)}, nil
}

// redactToken drops the last path element of an upload URL, its secret.
func redactToken(u string) string {
	if i := strings.LastIndexByte(u, '/'); i >= 0 {
		return u[:i+1] + "…"
	}
	return u
}
