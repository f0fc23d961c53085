package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"embed"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// rootfs holds /etc/passwd and /etc/group of the image.
//
//go:embed rootfs/etc/passwd rootfs/etc/group
var rootfs embed.FS

const (
	// dvcrID is the UID and GID of the dvcr user, the chart's runAsUser and
	// runAsGroup.
	dvcrID = 64535
	// caBundle is the host's CA certificates, copied to the same path.
	caBundle = "/etc/ssl/certs/ca-certificates.crt"
	// binDir is where the binaries go, on the image's PATH.
	binDir = "usr/local/bin"
	// gzipLevel is fixed: the compressed bytes, hence the digests, depend on
	// it. 6 (gzip's default) takes 3.5 s for the amd64 layer here; 9 takes
	// 9.2 s and saves 0.4%.
	gzipLevel = 6
)

// entry is one file or directory of the layer.
type entry struct {
	path string // relative, no leading or trailing slash
	mode int64  // permission bits, with the sticky bit for /tmp
	uid  int    // owner and group
	dir  bool
	data []byte // file contents
}

// rootfsEntries lists the layer's files: the binaries in binaries (a
// directory with one file per command), the CA bundle read from caFile, the
// embedded passwd and group, and the directories the registry uses. The
// parents of every path are added as root-owned 0755 directories.
func rootfsEntries(binaries, caFile string) ([]entry, error) {
	var files []entry
	for _, c := range commands {
		b, err := os.ReadFile(filepath.Join(binaries, c.name))
		if err != nil {
			return nil, fmt.Errorf("reading the built %s: %w", c.name, err)
		}
		files = append(files, entry{path: path.Join(binDir, c.name), mode: 0o755, data: b})
	}
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading the CA certificates (apt-get install ca-certificates): %w", err)
	}
	files = append(files, entry{path: caBundle[1:], mode: 0o644, data: ca})
	for _, name := range []string{"etc/passwd", "etc/group"} {
		b, err := rootfs.ReadFile("rootfs/" + name)
		if err != nil {
			return nil, fmt.Errorf("reading the embedded %s: %w", name, err)
		}
		files = append(files, entry{path: name, mode: 0o644, data: b})
	}
	files = append(files,
		entry{path: "tmp", mode: 0o1777, dir: true},
		entry{path: "etc/docker/registry", mode: 0o755, dir: true},
		// Writable by dvcr when no volume is mounted there (`docker run`):
		// the admin socket and the filesystem storage's default root.
		entry{path: "var/run/dvcr", mode: 0o755, uid: dvcrID, dir: true},
		entry{path: "var/lib/registry", mode: 0o755, uid: dvcrID, dir: true},
	)
	return withParents(files), nil
}

// withParents adds the missing parent directories and sorts by path, so that
// every directory comes before its contents.
func withParents(files []entry) []entry {
	seen := map[string]bool{}
	for _, e := range files {
		seen[e.path] = true
	}
	out := append([]entry(nil), files...)
	for _, e := range files {
		for dir := path.Dir(e.path); dir != "." && !seen[dir]; dir = path.Dir(dir) {
			seen[dir] = true
			out = append(out, entry{path: dir, mode: 0o755, dir: true})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

// writeTar writes the entries as a tar stream with every timestamp mtime.
func writeTar(w io.Writer, entries []entry, mtime time.Time) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		h := &tar.Header{
			Name:    e.path,
			Mode:    e.mode,
			Uid:     e.uid,
			Gid:     e.uid,
			ModTime: mtime,
			Format:  tar.FormatUSTAR,
		}
		if e.dir {
			h.Typeflag, h.Name = tar.TypeDir, e.path+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("tar header of %s: %w", e.path, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return fmt.Errorf("tar contents of %s: %w", e.path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("closing the tar stream: %w", err)
	}
	return nil
}

// layer is a built layer with its sizes.
type layer struct {
	v1.Layer
	uncompressed int64 // bytes of the tar stream
}

// buildLayer makes the gzip-compressed OCI layer of the entries. It is
// compressed here, once, at gzipLevel, with no name or time in the gzip
// header, and kept in memory (a few tens of MB).
func buildLayer(entries []entry, mtime time.Time) (layer, error) {
	var raw bytes.Buffer
	if err := writeTar(&raw, entries, mtime); err != nil {
		return layer{}, err
	}
	size := int64(raw.Len())
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzipLevel)
	if err != nil {
		return layer{}, fmt.Errorf("gzip: %w", err)
	}
	if _, err := raw.WriteTo(zw); err != nil {
		return layer{}, fmt.Errorf("compressing the layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return layer{}, fmt.Errorf("compressing the layer: %w", err)
	}
	compressed := gz.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(compressed)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return layer{}, fmt.Errorf("layer: %w", err)
	}
	return layer{Layer: l, uncompressed: size}, nil
}
