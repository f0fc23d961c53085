package importer

import (
	"context"
	"encoding/json"
	"fmt"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/dvcr/dvcr/importer/diskformat"
	"github.com/dvcr/dvcr/importer/registryclient"
	"github.com/dvcr/dvcr/progress"
)

// importFromDVCR copies an image of the same registry (from is "cvi/NAME"
// or "vi/NS/NAME", optionally ":TAG") by mounting its blobs into the target
// and writing the same manifest: no data moves.
func importFromDVCR(ctx context.Context, from, repository string, opts Options) (*Result, error) {
	opts = withDefaults(opts)
	src, srcTag, err := ParseRepository(from, opts.RegistryHost)
	if err != nil {
		return nil, fmt.Errorf("source dvcr://%s: %w", from, err)
	}
	if srcTag == "" {
		srcTag = "latest"
	}
	if len(opts.Checksums) > 0 {
		return nil, fmt.Errorf("%w: --checksum does not apply to a dvcr:// source (its bytes are not read)", ErrBadChecksum)
	}
	prog := progress.New(opts.Progress)
	j, err := newJob(ctx, repository, opts, prog, src.Path())
	if err != nil {
		return nil, err
	}
	m, manifest, err := readDiskManifest(ctx, j.client, src.Path(), srcTag)
	if err != nil {
		return nil, err
	}
	prog.Begin(PhaseMount, 0, manifest.Config.Size+manifest.Layers[0].Size)
	labels, err := mountAll(ctx, j.client, j.repo, src.Path(), manifest)
	if err != nil {
		return nil, err
	}
	prog.Begin(PhaseCommit, 0, -1)
	if err := j.client.PutManifest(ctx, j.repo, j.tag, m); err != nil {
		return nil, err
	}
	info := diskformat.Info{Format: labels.Format, VirtualSize: labels.VirtualSize, SourceSize: labels.SourceSize, CDROM: labels.Format == diskformat.ISO}
	return j.result(m, info, manifest.Config.Size+manifest.Layers[0].Size), nil
}

// readDiskManifest reads a manifest and checks it has the importers' shape.
func readDiskManifest(ctx context.Context, c *registryclient.Client, repo, tag string) (*registryclient.Manifest, *v1.Manifest, error) {
	m, err := c.GetManifest(ctx, repo, tag)
	if err != nil {
		return nil, nil, fmt.Errorf("source dvcr://%s:%s: %w", repo, tag, err)
	}
	var manifest v1.Manifest
	if err := json.Unmarshal(m.Bytes, &manifest); err != nil {
		return nil, nil, fmt.Errorf("%w: dvcr://%s:%s: %w", ErrNotDiskImage, repo, tag, err)
	}
	if len(manifest.Layers) != 1 {
		return nil, nil, fmt.Errorf("%w: dvcr://%s:%s has %d layers, want 1", ErrNotDiskImage, repo, tag, len(manifest.Layers))
	}
	return m, &manifest, nil
}

// mountAll mounts the config and the layer, and returns the labels.
func mountAll(ctx context.Context, c *registryclient.Client, repo, from string, manifest *v1.Manifest) (Labels, error) {
	cfg, err := c.GetBlob(ctx, from, manifest.Config.Digest)
	if err != nil {
		return Labels{}, err
	}
	labels, err := ParseLabels(cfg)
	if err != nil {
		return Labels{}, fmt.Errorf("dvcr://%s: %w", from, err)
	}
	for _, d := range []v1.Descriptor{manifest.Config, manifest.Layers[0]} {
		if err := c.MountBlob(ctx, repo, from, d.Digest); err != nil {
			return Labels{}, err
		}
	}
	return labels, nil
}
