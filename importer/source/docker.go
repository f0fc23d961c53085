package source

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// dockerSource reads the disk file out of a container image built as
// FROM scratch + COPY <file> /disk/.
type dockerSource struct {
	ref       name.Reference
	transport http.RoundTripper
	keychain  authn.Keychain
}

// wantPlatform is the manifest picked from a multi-platform index: the
// disk file does not depend on it, but an index must be resolved somehow.
var wantPlatform = v1.Platform{OS: "linux", Architecture: "amd64"}

func newDocker(ref string, opts Options) (*dockerSource, error) {
	var nopts []name.Option
	if opts.Insecure {
		nopts = append(nopts, name.Insecure)
	}
	r, err := name.ParseReference(ref, nopts...)
	if err != nil {
		return nil, fmt.Errorf("docker://%s: %w", ref, err)
	}
	t, err := NewTransport(opts.CABundle)
	if err != nil {
		return nil, fmt.Errorf("docker://%s: %w", ref, err)
	}
	s := &dockerSource{ref: r, transport: t, keychain: authn.DefaultKeychain}
	if opts.AuthFile != "" {
		if s.keychain, err = loadAuthFile(opts.AuthFile); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *dockerSource) String() string { return "docker://" + s.ref.String() }

func (s *dockerSource) Open(ctx context.Context) (*Stream, error) {
	desc, err := remote.Get(s.ref,
		remote.WithContext(ctx),
		remote.WithTransport(s.transport),
		remote.WithAuthFromKeychain(s.keychain),
		remote.WithPlatform(wantPlatform))
	if err != nil {
		return nil, s.registryError(err)
	}
	img, err := s.pickImage(desc)
	if err != nil {
		return nil, s.registryError(err)
	}
	return s.findDisk(img)
}

// pickImage resolves an index to linux/amd64, or to its only manifest.
func (s *dockerSource) pickImage(desc *remote.Descriptor) (v1.Image, error) {
	if !desc.MediaType.IsIndex() {
		return desc.Image()
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var found []string
	for _, m := range im.Manifests {
		if m.Platform != nil && m.Platform.OS == wantPlatform.OS && m.Platform.Architecture == wantPlatform.Architecture {
			return idx.Image(m.Digest)
		}
		if m.Platform != nil {
			found = append(found, m.Platform.String())
		}
	}
	if len(im.Manifests) == 1 {
		return idx.Image(im.Manifests[0].Digest)
	}
	return nil, fmt.Errorf("%w: %s is an index of %d manifests, none for %s (found %s)",
		ErrNotFound, s, len(im.Manifests), wantPlatform.String(), strings.Join(found, ", "))
}

// findDisk walks the layers in order and opens the first disk file.
func (s *dockerSource) findDisk(img v1.Image) (*Stream, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, s.registryError(err)
	}
	var seen []string
	for i, l := range layers {
		st, err := s.diskInLayer(l, &seen)
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i+1, s.registryError(err))
		}
		if st != nil {
			return st, nil
		}
	}
	return nil, fmt.Errorf("%w: %s has no regular file under disk/ in its %d layer(s)%s",
		ErrNoDiskFile, s, len(layers), listSeen(seen))
}

// diskInLayer returns a Stream for the layer's disk file, nil if there is
// none; names of other entries are appended to seen for the error message.
func (s *dockerSource) diskInLayer(l v1.Layer, seen *[]string) (*Stream, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil, rc.Close()
		}
		if err != nil {
			rc.Close()
			return nil, err
		}
		if isDiskEntry(hdr) {
			body := &layerFile{Reader: tr, layer: rc, src: s.String()}
			return &Stream{Body: body, Name: SanitizeName(path.Base(hdr.Name)), Size: hdr.Size}, nil
		}
		*seen = append(*seen, hdr.Name)
	}
}

// isDiskEntry: a regular file directly under disk/ once the path is
// cleaned, so "disk/x", "./disk/x" and "/disk/x" all count; whiteouts don't.
func isDiskEntry(hdr *tar.Header) bool {
	if hdr.Typeflag != tar.TypeReg {
		return false
	}
	dir, base := path.Split(path.Clean("/" + hdr.Name))
	return dir == "/disk/" && !strings.HasPrefix(base, ".wh.")
}

// listSeen names a few of the entries found, for ErrNoDiskFile.
func listSeen(seen []string) string {
	const most = 5
	switch {
	case len(seen) == 0:
		return " (the layers are empty)"
	case len(seen) <= most:
		return " (found: " + strings.Join(seen, ", ") + ")"
	}
	return fmt.Sprintf(" (found: %s and %d more)", strings.Join(seen[:most], ", "), len(seen)-most)
}

// layerFile is the disk file's bytes, read straight from the layer's tar
// stream; closing it closes the layer download.
type layerFile struct {
	io.Reader
	layer io.ReadCloser
	src   string // for messages
}

// Read drains the rest of the layer once the file ends: go-containerregistry
// checks the layer digest only when the compressed stream has been read to
// its end, and a disk image should not be accepted unverified. The rest is
// normally just the tar trailer.
func (f *layerFile) Read(p []byte) (int, error) {
	n, err := f.Reader.Read(p)
	if err == io.EOF {
		if _, derr := io.Copy(io.Discard, f.layer); derr != nil {
			return n, fmt.Errorf("%s: verifying the layer after the disk file: %w", f.src, derr)
		}
	}
	return n, err
}

func (f *layerFile) Close() error { return f.layer.Close() }

// registryError sorts registry failures into the package's sentinels.
func (s *dockerSource) registryError(err error) error {
	var te *transport.Error
	if !errors.As(err, &te) {
		return fmt.Errorf("%s: %w", s, err)
	}
	switch {
	case te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden ||
		hasCode(te, transport.UnauthorizedErrorCode, transport.DeniedErrorCode):
		return fmt.Errorf("%w: %s: %w", ErrUnauthorized, s, err)
	case te.StatusCode == http.StatusNotFound ||
		hasCode(te, transport.NameUnknownErrorCode, transport.ManifestUnknownErrorCode, transport.BlobUnknownErrorCode):
		return fmt.Errorf("%w: %s: %w", ErrNotFound, s, err)
	}
	return fmt.Errorf("%s: %w", s, err)
}

func hasCode(te *transport.Error, codes ...transport.ErrorCode) bool {
	for _, d := range te.Errors {
		for _, c := range codes {
			if d.Code == c {
				return true
			}
		}
	}
	return false
}
