package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/dvcr/dvcr/units"
)

// digests is _out/image/digests.json.
type digests struct {
	Reference string         `json:"reference"`
	Version   string         `json:"version"`
	Revision  string         `json:"revision"`
	Created   string         `json:"created"`
	Index     string         `json:"index"`
	Pushed    string         `json:"pushed,omitempty"`
	Images    []imageDigests `json:"images"`
}

// imageDigests describes the image of one platform.
type imageDigests struct {
	Platform string `json:"platform"`
	Manifest string `json:"manifest"`
	Config   string `json:"config"`
	Layer    string `json:"layer"`
	// CompressedSize is the layer as pulled; UncompressedSize the tar stream.
	CompressedSize   int64  `json:"compressedSize"`
	UncompressedSize int64  `json:"uncompressedSize"`
	Tarball          string `json:"tarball"`
}

// digests collects the digests and sizes of the result.
func (r *result) digests() (digests, error) {
	d := digests{
		Reference: r.reference.Name(),
		Version:   r.source.version,
		Revision:  r.source.revision,
		Created:   r.source.created.Format(time.RFC3339),
		Index:     r.digest.String(),
		Pushed:    r.pushed,
	}
	for _, pi := range r.images {
		manifest, err := pi.image.Digest()
		if err != nil {
			return d, fmt.Errorf("linux/%s: manifest digest: %w", pi.arch, err)
		}
		config, err := pi.image.ConfigName()
		if err != nil {
			return d, fmt.Errorf("linux/%s: config digest: %w", pi.arch, err)
		}
		layer, err := pi.layer.Digest()
		if err != nil {
			return d, fmt.Errorf("linux/%s: layer digest: %w", pi.arch, err)
		}
		size, err := pi.layer.Size()
		if err != nil {
			return d, fmt.Errorf("linux/%s: layer size: %w", pi.arch, err)
		}
		p := platform(pi.arch)
		d.Images = append(d.Images, imageDigests{
			Platform:         p.String(),
			Manifest:         manifest.String(),
			Config:           config.String(),
			Layer:            layer.String(),
			CompressedSize:   size,
			UncompressedSize: pi.layer.uncompressed,
			Tarball:          filepath.Base(r.tarballPath(pi.arch)),
		})
	}
	return d, nil
}

// report writes digests.json and prints the table of the images.
func (r *result) report(w io.Writer, took time.Duration) error {
	d, err := r.digests()
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding digests.json: %w", err)
	}
	path := filepath.Join(r.out, "digests.json")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PLATFORM\tCOMPRESSED\tUNCOMPRESSED\tMANIFEST DIGEST")
	for _, im := range d.Images {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", im.Platform,
			units.FormatBytes(uint64(im.CompressedSize)), units.FormatBytes(uint64(im.UncompressedSize)), im.Manifest)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("printing the table: %w", err)
	}
	fmt.Fprintf(w, "index %s  %s (revision %.12s, created %s)\n", d.Index, d.Reference, d.Revision, d.Created)
	fmt.Fprintf(w, "wrote %s, %s and the docker archives in %s in %.1fs\n",
		r.layoutDir(), path, r.out, took.Seconds())
	if d.Pushed != "" {
		fmt.Fprintf(w, "pushed %s@%s\n", d.Pushed, d.Index)
	}
	return nil
}
