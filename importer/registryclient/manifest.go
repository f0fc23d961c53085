package registryclient

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// maxManifest bounds a manifest read into memory (distribution's own limit).
const maxManifest = 4 << 20

// Manifest is a manifest as the registry stores it.
type Manifest struct {
	MediaType string
	Digest    digest.Digest
	Bytes     []byte
}

// acceptedManifests are the single-image manifest types an import reads.
var acceptedManifests = []string{
	v1.MediaTypeImageManifest,
	"application/vnd.docker.distribution.manifest.v2+json",
}

// GetManifest reads repo:ref (a tag or a digest).
func (c *Client) GetManifest(ctx context.Context, repo, ref string) (*Manifest, error) {
	u, err := c.url("/v2/" + repo + "/manifests/" + ref)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, func() (*http.Request, error) {
		req, err := http.NewRequest(http.MethodGet, u.String(), nil)
		if err == nil {
			req.Header.Set("Accept", strings.Join(acceptedManifests, ", "))
		}
		return req, err
	}, http.StatusOK)
	if err != nil {
		return nil, fmt.Errorf("reading %s:%s: %w", repo, ref, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxManifest+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s:%s: %w", repo, ref, err)
	}
	if len(data) > maxManifest {
		return nil, fmt.Errorf("manifest %s:%s is larger than %d bytes", repo, ref, maxManifest)
	}
	m := &Manifest{MediaType: resp.Header.Get("Content-Type"), Digest: digest.FromBytes(data), Bytes: data}
	if d, err := digest.Parse(ref); err == nil && d != m.Digest {
		return nil, fmt.Errorf("manifest %s@%s: content does not match its digest", repo, ref)
	}
	return m, nil
}

// PutManifest stores m as repo:ref.
func (c *Client) PutManifest(ctx context.Context, repo, ref string, m *Manifest) error {
	u, err := c.url("/v2/" + repo + "/manifests/" + ref)
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, func() (*http.Request, error) {
		req, err := http.NewRequest(http.MethodPut, u.String(), bytes.NewReader(m.Bytes))
		if err == nil {
			req.Header.Set("Content-Type", m.MediaType)
		}
		return req, err
	}, http.StatusCreated)
	if err != nil {
		return fmt.Errorf("tagging %s:%s: %w", repo, ref, err)
	}
	drain(resp)
	return nil
}
