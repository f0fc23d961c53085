package registryclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	digest "github.com/opencontainers/go-digest"
)

// maxSmallBlob bounds what GetBlob reads into memory (image configs).
const maxSmallBlob = 4 << 20

// BlobExists asks whether repo can serve the blob.
func (c *Client) BlobExists(ctx context.Context, repo string, dgst digest.Digest) (bool, error) {
	u, err := c.url("/v2/" + repo + "/blobs/" + dgst.String())
	if err != nil {
		return false, err
	}
	resp, err := c.do(ctx, func() (*http.Request, error) {
		return http.NewRequest(http.MethodHead, u.String(), nil)
	}, http.StatusOK)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	drain(resp)
	return true, nil
}

// PutBlob uploads a small blob held in memory. It does not ask first
// whether the blob is there: for a few hundred bytes the question costs as
// much as the upload, and the registry logs every 404 as an error.
func (c *Client) PutBlob(ctx context.Context, repo string, data []byte) (digest.Digest, error) {
	dgst := digest.FromBytes(data)
	up, err := c.StartUpload(ctx, repo)
	if err != nil {
		return "", err
	}
	if _, err := up.Copy(ctx, bytes.NewReader(data)); err != nil {
		up.Cancel()
		return "", err
	}
	if err := up.Commit(ctx, dgst); err != nil {
		up.Cancel()
		return "", err
	}
	return dgst, nil
}

// MountBlob links a blob of repository from into repo without moving data.
// A registry that answers with an upload session instead (it cannot mount)
// gets that session cancelled and ErrMountRefused: no copy is made behind
// the caller's back.
func (c *Client) MountBlob(ctx context.Context, repo, from string, dgst digest.Digest) error {
	u, err := c.url("/v2/" + repo + "/blobs/uploads/")
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("mount", dgst.String())
	q.Set("from", from)
	u.RawQuery = q.Encode()
	resp, err := c.do(ctx, func() (*http.Request, error) {
		return http.NewRequest(http.MethodPost, u.String(), nil)
	}, http.StatusCreated, http.StatusAccepted)
	if err != nil {
		return fmt.Errorf("mounting %s from %s into %s: %w", dgst, from, repo, err)
	}
	drain(resp)
	if resp.StatusCode == http.StatusAccepted {
		(&Upload{c: c, repo: repo, location: resp.Header.Get("Location")}).Cancel()
		return fmt.Errorf("%w: %s from %s into %s", ErrMountRefused, dgst, from, repo)
	}
	return nil
}

// GetBlob reads a small blob (at most 4 MiB) and checks its digest.
func (c *Client) GetBlob(ctx context.Context, repo string, dgst digest.Digest) ([]byte, error) {
	u, err := c.url("/v2/" + repo + "/blobs/" + dgst.String())
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, func() (*http.Request, error) {
		return http.NewRequest(http.MethodGet, u.String(), nil)
	}, http.StatusOK)
	if err != nil {
		return nil, fmt.Errorf("reading blob %s of %s: %w", dgst, repo, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxSmallBlob+1))
	if err != nil {
		return nil, fmt.Errorf("reading blob %s of %s: %w", dgst, repo, err)
	}
	if len(data) > maxSmallBlob {
		return nil, fmt.Errorf("blob %s of %s is larger than %d bytes", dgst, repo, maxSmallBlob)
	}
	if digest.FromBytes(data) != dgst {
		return nil, fmt.Errorf("blob %s of %s: content does not match its digest", dgst, repo)
	}
	return data, nil
}
