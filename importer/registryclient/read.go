package registryclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	digest "github.com/opencontainers/go-digest"
)

// OpenBlob streams a blob from offset on (a Range request when offset > 0).
// The caller checks the digest. A registry that ignores Range answers 200
// with the whole blob: the bytes before offset are skipped here.
func (c *Client) OpenBlob(ctx context.Context, repo string, dgst digest.Digest, offset int64) (io.ReadCloser, error) {
	u, err := c.url("/v2/" + repo + "/blobs/" + dgst.String())
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, func() (*http.Request, error) {
		req, err := http.NewRequest(http.MethodGet, u.String(), nil)
		if err == nil && offset > 0 {
			req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
		}
		return req, err
	}, http.StatusOK, http.StatusPartialContent)
	if err != nil {
		return nil, fmt.Errorf("reading blob %s of %s: %w", dgst, repo, err)
	}
	if offset == 0 {
		return resp.Body, nil
	}
	if resp.StatusCode == http.StatusPartialContent {
		if start, ok := contentRangeStart(resp.Header.Get("Content-Range")); !ok || start != offset {
			resp.Body.Close()
			return nil, fmt.Errorf("reading blob %s of %s from byte %d: the registry answered Content-Range %q", dgst, repo, offset, resp.Header.Get("Content-Range"))
		}
		return resp.Body, nil
	}
	if _, err := io.CopyN(io.Discard, resp.Body, offset); err != nil {
		resp.Body.Close()
		return nil, fmt.Errorf("reading blob %s of %s: skipping to byte %d: %w", dgst, repo, offset, err)
	}
	return resp.Body, nil
}

// contentRangeStart reads the first byte of "bytes START-END/SIZE".
func contentRangeStart(v string) (int64, bool) {
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, false
	}
	start, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(start, 10, 64)
	return n, err == nil
}

// Tags lists the tags of repo; an unknown repository is ErrNotFound.
func (c *Client) Tags(ctx context.Context, repo string) ([]string, error) {
	u, err := c.url("/v2/" + repo + "/tags/list")
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, func() (*http.Request, error) {
		return http.NewRequest(http.MethodGet, u.String(), nil)
	}, http.StatusOK)
	if err != nil {
		return nil, fmt.Errorf("listing the tags of %s: %w", repo, err)
	}
	defer resp.Body.Close()
	var list struct {
		Tags []string `json:"tags"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxManifest)).Decode(&list); err != nil {
		return nil, fmt.Errorf("listing the tags of %s: %w", repo, err)
	}
	return list.Tags, nil
}
