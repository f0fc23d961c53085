package exporter

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"io"

	digest "github.com/opencontainers/go-digest"

	"github.com/dvcr/dvcr/importer/registryclient"
	"github.com/dvcr/dvcr/progress"
)

// job is one transfer of a layer into an output.
type job struct {
	img      *image
	br       *blobReader
	layer    digest.Digester
	in       io.Reader // the layer, hashed as read
	e        entry
	out      *output
	existing int64    // bytes of the output kept by --continue
	conv     *diskMap // --format raw: the map of the disk file
}

// transfer streams the layer: header, disk file into the output, tail;
// then checks the layer digest.
func transfer(ctx context.Context, c *registryclient.Client, img *image, file string, opts Options, prog *progress.Counter) (*Result, error) {
	j := &job{img: img, layer: digest.Canonical.Digester()}
	j.br = &blobReader{ctx: ctx, c: c, repo: img.repo, desc: img.layer, maxRetries: opts.MaxRetries, idle: opts.IdleTimeout, prog: prog}
	defer j.br.Close()
	j.in = io.TeeReader(j.br, j.layer.Hash())
	var err error
	if j.e, err = readEntry(j.in); err != nil {
		return nil, fmt.Errorf("%s: %w", img.display, err)
	}
	if j.e.MinLayerSize() > img.layer.Size {
		return nil, fmt.Errorf("%s: %w: the layer (%d bytes) is shorter than its entry of %d bytes", img.display, ErrNotDiskImage, img.layer.Size, j.e.Size)
	}
	data := bufio.NewReaderSize(io.LimitReader(j.in, j.e.Size), 256<<10)
	comp := compressionOf(data, opts.Decompress)
	name, total := j.e.Name, j.e.Size
	if comp != "" {
		name, total = decompressedName(name, comp), -1
	}
	if opts.Format == FormatRaw {
		if name, total, err = j.planRaw(ctx, c, data); err != nil {
			return nil, fmt.Errorf("%s: --format raw: %w", img.display, err)
		}
	}
	if opts.Begin != nil {
		if err := opts.Begin(name, total); err != nil {
			return nil, err
		}
	}
	if j.out, err = openOutput(file, name, opts.Continue, opts.Stdout, total); err != nil {
		return nil, err
	}
	if err := j.run(data, comp, opts.Continue, prog); err != nil {
		j.out.abandon()
		return nil, err
	}
	if err := j.out.finish(); err != nil {
		return nil, err
	}
	return j.result(comp), nil
}

// run writes the disk file and reads the tail, then checks the digest.
func (j *job) run(data *bufio.Reader, comp string, cont bool, prog *progress.Counter) error {
	if cont {
		prog.Begin(PhaseContinue, 0, j.e.Size)
		k, err := j.out.resume(j.e.Size, j.layer.Hash())
		if err != nil {
			return err
		}
		j.existing = k
		j.br.seek(j.e.DataOffset() + k)
		data = bufio.NewReaderSize(io.LimitReader(j.in, j.e.Size-k), 256<<10)
	}
	prog.Begin(PhaseTransfer, j.existing, j.e.Size)
	src := io.Reader(io.TeeReader(data, prog))
	if err := j.copy(src, comp); err != nil {
		return fmt.Errorf("%s: %w", j.img.display, err)
	}
	prog.End()
	if err := zeroTail(j.in); err != nil {
		return fmt.Errorf("%s: %w", j.img.display, err)
	}
	if got := j.layer.Digest(); got != j.img.layer.Digest {
		return j.mismatch(got)
	}
	return nil
}

func (j *job) mismatch(got digest.Digest) error {
	if j.existing > 0 {
		return fmt.Errorf("%s: %w: the %d bytes already in %s are not the start of this image's disk file (--continue): remove it and export again",
			j.img.display, ErrDigestMismatch, j.existing, j.out.name)
	}
	return fmt.Errorf("%s: %w: the bytes read hash to %s, the manifest says %s; %s is left as written and is not the image",
		j.img.display, ErrDigestMismatch, got, j.img.layer.Digest, j.out.name)
}

func (j *job) result(comp string) *Result {
	format, source := string(j.img.labels.Format), ""
	if j.conv != nil {
		format, source = FormatRaw, format
	}
	return &Result{
		SourceFormat:  source,
		File:          j.out.name,
		Format:        format,
		Compression:   comp,
		Decompressed:  comp != "",
		Bytes:         j.out.written,
		SHA256:        hex.EncodeToString(j.out.hash.Sum(nil)),
		ContinuedFrom: j.existing,
	}
}

// copy writes the disk file: as stored, decompressed or converted.
func (j *job) copy(src io.Reader, comp string) error {
	if j.conv == nil {
		return copyData(j.out, src, comp)
	}
	if err := j.out.f.Truncate(j.conv.virtualSize); err != nil {
		return j.out.writeError(err)
	}
	if err := j.conv.convert(src, j.e.Size, j.out); err != nil {
		return err
	}
	return j.out.rehash(j.conv.virtualSize)
}
