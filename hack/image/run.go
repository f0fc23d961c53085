package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Annotations of the index's descriptor in the layout's index.json: the tag
// (`skopeo copy oci:_out/image/oci:<tag> ...`) and the whole reference name
// (`ctr images import` names the image after it).
const (
	refNameAnnotation        = "org.opencontainers.image.ref.name"
	containerdNameAnnotation = "io.containerd.image.name"
)

// result is what a run built and wrote.
type result struct {
	source    source
	reference name.Tag
	out       string // output directory
	index     v1.ImageIndex
	digest    v1.Hash // of the index
	images    []platformImage
	pushed    string // the reference pushed to, "" when not pushed
}

// layoutDir and tarballPath are the outputs under the output directory.
func (r *result) layoutDir() string { return filepath.Join(r.out, "oci") }
func (r *result) tarballPath(arch string) string {
	return filepath.Join(r.out, "dvcr-linux-"+arch+".tar")
}

// run builds the images and the index, writes the outputs, reports and pushes.
func run(ctx context.Context, o options, stdout, stderr io.Writer) (*result, error) {
	start := time.Now()
	s, err := loadSource(ctx, o)
	if err != nil {
		return nil, err
	}
	if s.dirty {
		fmt.Fprintf(stderr, "image: warning: the working tree has uncommitted changes; the revision label still says %s\n", s.revision)
	}
	r := &result{source: s, out: o.out}
	if !filepath.IsAbs(r.out) {
		r.out = filepath.Join(s.root, r.out)
	}
	tag := o.tag
	if tag == "" {
		tag = defaultRepository + ":" + s.version
	}
	if r.reference, err = name.NewTag(tag, name.StrictValidation); err != nil {
		return nil, fmt.Errorf("--tag %q: want REGISTRY/REPOSITORY:TAG: %w", tag, err)
	}
	if r.images, err = buildImages(ctx, o, s, stderr); err != nil {
		return nil, err
	}
	if r.index, err = buildIndex(r.images, s); err != nil {
		return nil, err
	}
	if r.digest, err = r.index.Digest(); err != nil {
		return nil, fmt.Errorf("index digest: %w", err)
	}
	if err := r.write(); err != nil {
		return nil, err
	}
	if o.push != "" {
		if err := r.push(ctx, o.push); err != nil {
			return nil, err
		}
	}
	if err := r.report(stdout, time.Since(start)); err != nil {
		return nil, err
	}
	return r, nil
}

// buildImages compiles the binaries and makes the image of each architecture.
func buildImages(ctx context.Context, o options, s source, stderr io.Writer) ([]platformImage, error) {
	tmp, err := os.MkdirTemp("", "dvcr-image-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	var images []platformImage
	for _, arch := range o.arches {
		start := time.Now()
		bin := filepath.Join(tmp, arch)
		if err := goBuild(ctx, o, s.root, arch, bin); err != nil {
			return nil, err
		}
		entries, err := rootfsEntries(bin, caBundle)
		if err != nil {
			return nil, err
		}
		l, err := buildLayer(entries, s.created)
		if err != nil {
			return nil, fmt.Errorf("linux/%s: %w", arch, err)
		}
		img, err := buildImage(l, arch, s)
		if err != nil {
			return nil, err
		}
		images = append(images, platformImage{arch: arch, image: img, layer: l})
		fmt.Fprintf(stderr, "image: linux/%s built in %.1fs\n", arch, time.Since(start).Seconds())
	}
	return images, nil
}

// write replaces the layout and the archives under the output directory.
func (r *result) write() error {
	if err := os.MkdirAll(r.out, 0o755); err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	dir := r.layoutDir()
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("removing the previous layout: %w", err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("writing the OCI layout %s: %w", dir, err)
	}
	err = p.AppendIndex(r.index, layout.WithAnnotations(map[string]string{
		refNameAnnotation:        r.reference.TagStr(),
		containerdNameAnnotation: r.reference.Name(),
	}))
	if err != nil {
		return fmt.Errorf("writing the index into %s: %w", dir, err)
	}
	for _, pi := range r.images {
		path := r.tarballPath(pi.arch)
		if err := tarball.WriteToFile(path, r.reference, pi.image); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	return nil
}

// push writes the index and its images to ref with the credentials of the
// docker config (~/.docker/config.json, DOCKER_CONFIG).
func (r *result) push(ctx context.Context, ref string) error {
	dst, err := name.ParseReference(ref, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("--push %q: want REGISTRY/REPOSITORY:TAG: %w", ref, err)
	}
	err = remote.WriteIndex(dst, r.index, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		return fmt.Errorf("pushing to %s: %w", dst, err)
	}
	r.pushed = dst.Name()
	return nil
}
