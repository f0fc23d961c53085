package exporter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/dvcr/dvcr/importer"
	"github.com/dvcr/dvcr/importer/registryclient"
)

// Sentinel errors; the errors returned wrap them with the detail.
var (
	// ErrRepositoryNotFound: the registry has no such repository.
	ErrRepositoryNotFound = errors.New("repository not found")
	// ErrTagNotFound: the repository has no such tag.
	ErrTagNotFound = errors.New("not found")
	// ErrDigestMismatch: the layer read does not have the manifest's digest.
	ErrDigestMismatch = errors.New("layer digest mismatch")
	// ErrNotDiskImage is importer.ErrNotDiskImage: not in the importers' layout.
	ErrNotDiskImage = importer.ErrNotDiskImage
)

// image is a resolved image in the importers' layout.
type image struct {
	display string // the repository as the user named it
	repo    string // its path in the registry
	digest  digest.Digest
	layer   v1.Descriptor
	labels  importer.Labels
}

// resolve reads the manifest and the config of repo:tag and checks the
// layout.
func resolve(ctx context.Context, c *registryclient.Client, display, repo, tag string) (*image, error) {
	m, err := c.GetManifest(ctx, repo, tag)
	if errors.Is(err, registryclient.ErrNotFound) {
		return nil, notFound(ctx, c, display, repo, tag)
	}
	if err != nil {
		return nil, fmt.Errorf("%s:%s: %w", display, tag, err)
	}
	var manifest v1.Manifest
	if err := json.Unmarshal(m.Bytes, &manifest); err != nil {
		return nil, fmt.Errorf("%s:%s: %w: manifest: %w", display, tag, ErrNotDiskImage, err)
	}
	if len(manifest.Layers) != 1 {
		return nil, fmt.Errorf("%s:%s: %w: %d layers, want 1", display, tag, ErrNotDiskImage, len(manifest.Layers))
	}
	cfg, err := c.GetBlob(ctx, repo, manifest.Config.Digest)
	if err != nil {
		return nil, fmt.Errorf("%s:%s: config: %w", display, tag, err)
	}
	labels, err := importer.ParseLabels(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s:%s: %w", display, tag, err)
	}
	return &image{display: display, repo: repo, digest: m.Digest, layer: manifest.Layers[0], labels: labels}, nil
}

// notFound tells a missing repository from a missing tag.
func notFound(ctx context.Context, c *registryclient.Client, display, repo, tag string) error {
	tags, err := c.Tags(ctx, repo)
	if errors.Is(err, registryclient.ErrNotFound) || (err == nil && len(tags) == 0) {
		return fmt.Errorf("%s: %w", display, ErrRepositoryNotFound)
	}
	if err != nil || len(tags) > 20 {
		return fmt.Errorf("%s: tag %s %w", display, tag, ErrTagNotFound)
	}
	return fmt.Errorf("%s: tag %s %w (tags: %s)", display, tag, ErrTagNotFound, strings.Join(tags, ", "))
}
