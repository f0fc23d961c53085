package importer

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/dvcr/dvcr/importer/diskformat"
	"github.com/dvcr/dvcr/importer/registryclient"
	"github.com/dvcr/dvcr/importer/source"
	"github.com/dvcr/dvcr/progress"
)

// job is one import of a stream into a repository.
type job struct {
	client *registryclient.Client
	repo   string // repository path, shortened
	tag    string
	sums   []*checksum
	opts   Options
	prog   *progress.Counter
	start  time.Time
}

// newJob checks the arguments and connects to the registry; extra names
// repositories the job also reads (a dvcr:// source).
func newJob(ctx context.Context, repository string, opts Options, prog *progress.Counter, extra ...string) (*job, error) {
	j := &job{opts: opts, prog: prog, start: time.Now()}
	target, tag, err := ParseRepository(repository, opts.RegistryHost)
	if err != nil {
		return nil, err
	}
	j.repo, j.tag = target.Path(), tag
	if j.tag == "" {
		j.tag = opts.Tag
	}
	if j.sums, err = parseChecksums(opts.Checksums); err != nil {
		return nil, err
	}
	if j.client, err = newClient(ctx, opts, prog, append([]string{j.repo}, extra...)...); err != nil {
		return nil, err
	}
	return j, nil
}

// run streams the source into a new layer, checks it and tags the image.
func (j *job) run(ctx context.Context, stream *source.Stream) (*Result, error) {
	insp := diskformat.NewInspector()
	body, size, inspected, err := j.sized(ctx, stream, insp)
	if err != nil {
		insp.Abort()
		return nil, err
	}
	defer body.Close()
	layer, info, err := j.pushLayer(ctx, stream.Name, body, size, insp, inspected)
	if err != nil {
		return nil, err
	}
	return j.commit(ctx, info, layer)
}

// sized returns the source with its length known: a stream of unknown
// length is spooled to an unlinked temporary file first (inspected and
// checksummed on the way, so the second pass needs neither).
func (j *job) sized(ctx context.Context, stream *source.Stream, insp *diskformat.Inspector) (io.ReadCloser, int64, bool, error) {
	if stream.Size >= 0 {
		return stream.Body, stream.Size, false, nil
	}
	f, err := os.CreateTemp(j.opts.TempDir, "dvcr-import-*")
	if err != nil {
		return nil, 0, false, fmt.Errorf("spooling a source of unknown length: %w", err)
	}
	_ = os.Remove(f.Name()) // unlinked: nothing is left behind, even if the process is killed
	j.prog.Begin(PhaseDownload, 0, -1)
	n, err := io.Copy(f, contextReader(ctx, io.TeeReader(stream.Body, j.observers(insp))))
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, 0, false, fmt.Errorf("spooling the source to %s: %w", f.Name(), err)
	}
	j.prog.End()
	return f, n, true, nil
}

// observers are what sees the source bytes once: the format inspector, the
// checksums and the progress counter.
func (j *job) observers(insp *diskformat.Inspector) io.Writer {
	return io.MultiWriter(insp, checksumWriter(j.sums), j.prog)
}

// pushLayer uploads disk/<name> as a tar layer and commits the blob once the
// image has passed every check; on any failure the upload is cancelled.
func (j *job) pushLayer(ctx context.Context, name string, body io.Reader, size int64, insp *diskformat.Inspector, inspected bool) (v1.Descriptor, diskformat.Info, error) {
	header, err := tarHeader(name, size)
	if err != nil {
		return v1.Descriptor{}, diskformat.Info{}, err
	}
	var watch io.Writer = j.prog
	if !inspected {
		watch = j.observers(insp)
	}
	src := &exactReader{r: io.TeeReader(body, watch), size: size}
	layer := io.MultiReader(bytes.NewReader(header), src, bytes.NewReader(tarTrailer(size)))
	up, err := j.client.StartUpload(ctx, j.repo)
	if err != nil {
		insp.Abort()
		return v1.Descriptor{}, diskformat.Info{}, err
	}
	info, err := j.send(ctx, up, layer, size, insp)
	if err != nil {
		up.Cancel()
		return v1.Descriptor{}, diskformat.Info{}, err
	}
	desc := v1.Descriptor{MediaType: v1.MediaTypeImageLayer, Digest: up.Digest(), Size: layerSize(header, size)}
	if err := up.Commit(ctx, desc.Digest); err != nil {
		up.Cancel()
		return v1.Descriptor{}, diskformat.Info{}, err
	}
	return desc, info, nil
}

// send copies the layer to the registry and runs the final checks.
func (j *job) send(ctx context.Context, up *registryclient.Upload, layer io.Reader, size int64, insp *diskformat.Inspector) (diskformat.Info, error) {
	j.prog.Begin(PhaseTransfer, 0, size)
	if _, err := up.Copy(ctx, layer); err != nil {
		insp.Abort()
		return diskformat.Info{}, err
	}
	j.prog.End()
	j.prog.Begin(PhaseVerify, 0, -1)
	info, err := insp.Close()
	if err != nil {
		return diskformat.Info{}, err
	}
	if err := verifyChecksums(j.sums); err != nil {
		return diskformat.Info{}, err
	}
	return info, nil
}

// commit writes the config and the manifest: the image is tagged only now.
func (j *job) commit(ctx context.Context, info diskformat.Info, layer v1.Descriptor) (*Result, error) {
	j.prog.Begin(PhaseCommit, 0, -1)
	cfg, err := imageConfig(info, layer.Digest)
	if err != nil {
		return nil, err
	}
	cfgDigest, err := j.client.PutBlob(ctx, j.repo, cfg)
	if err != nil {
		return nil, err
	}
	cfgDesc := v1.Descriptor{MediaType: v1.MediaTypeImageConfig, Digest: cfgDigest, Size: int64(len(cfg))}
	man, err := imageManifest(cfgDesc, layer)
	if err != nil {
		return nil, err
	}
	m := &registryclient.Manifest{MediaType: v1.MediaTypeImageManifest, Digest: digest.FromBytes(man), Bytes: man}
	if err := j.client.PutManifest(ctx, j.repo, j.tag, m); err != nil {
		return nil, err
	}
	return j.result(m, info, layer.Size+cfgDesc.Size), nil
}

// result describes the image tagged with manifest m.
func (j *job) result(m *registryclient.Manifest, info diskformat.Info, stored int64) *Result {
	return &Result{
		Repository:    j.repo,
		Tag:           j.tag,
		Digest:        m.Digest.String(),
		Format:        string(info.Format),
		Compression:   string(info.Compression),
		CDROM:         info.CDROM,
		StoredBytes:   stored,
		UnpackedBytes: info.VirtualSize,
		SourceBytes:   info.SourceSize,
		Seconds:       time.Since(j.start).Seconds(),
	}
}
