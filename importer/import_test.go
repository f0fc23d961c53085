package importer_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dvcr/dvcr/importer"
	"github.com/dvcr/dvcr/importer/diskformat"
	"github.com/dvcr/dvcr/importer/registryclient"
	"github.com/dvcr/dvcr/importer/source"
	"github.com/dvcr/dvcr/test/dvcrtest"
)

// TestImportMatchesLayout: importing a file stores exactly the image that
// test/ocilayout, written apart from the importer, makes of it.
func TestImportMatchesLayout(t *testing.T) {
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{})
	disk := dvcrtest.MakeDisk(t, "same", "qcow2", "16M", 64<<10)
	res, err := importer.Import(context.Background(), disk.Path, "cvi/same:v1", importer.Options{Registry: srv.Addr})
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest != disk.Image.ManifestDigest.String() || res.Tag != "v1" || res.Repository != "cvi/same" {
		t.Fatalf("import %+v, layout manifest %s", res, disk.Image.ManifestDigest)
	}
	if res.StoredBytes != disk.Image.Layer.Size+disk.Image.Config.Size {
		t.Errorf("stored %d, layout %d+%d", res.StoredBytes, disk.Image.Layer.Size, disk.Image.Config.Size)
	}
}

// TestImportFailuresLeaveNothing: each failure is reported with its
// sentinel, no tag is written and no upload session is left open.
func TestImportFailuresLeaveNothing(t *testing.T) {
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{})
	dir := t.TempDir()
	good := dvcrtest.MakeDiskFile(t, dir, "good", "qcow2", "16M", 64<<10)
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	dvcrtest.MakeDiskFile(t, dir, "base", "qcow2", "16M", 0)
	child := filepath.Join(dir, "child.qcow2")
	runQemu(t, "create", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", child)
	cases := []struct {
		name   string
		repo   string
		run    func(repo string, opts importer.Options) error
		want   error
		upload bool // the failure comes after an upload session was opened
	}{
		{"checksum mismatch", "cvi/sum", fileImport(good, "sha1:"+strings.Repeat("0", 40)), importer.ErrChecksumMismatch, true},
		{"bad checksum", "cvi/badsum", fileImport(good, "sha1:00"), importer.ErrBadChecksum, false},
		{"backing file", "cvi/child", fileImport(child), diskformat.ErrBackingFile, true},
		{"missing file", "cvi/missing", fileImport(filepath.Join(dir, "absent")), source.ErrNotFound, false},
		{"unmanaged repository", "foo/bar", fileImport(good), importer.ErrBadRepository, false},
		{"stream shorter than announced", "cvi/short", streamImport(data, int64(len(data))+4096), importer.ErrSizeMismatch, true},
		{"stream longer than announced", "cvi/long", streamImport(data, int64(len(data))-4096), importer.ErrSizeMismatch, true},
		{"missing dvcr:// image", "cvi/nomount", func(repo string, opts importer.Options) error {
			_, err := importer.Import(context.Background(), "dvcr://cvi/absent", repo, opts)
			return err
		}, registryclient.ErrNotFound, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.run(c.repo, importer.Options{Registry: srv.Addr})
			if !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
			assertNothingLeft(t, srv, c.repo)
		})
	}
}

func fileImport(path string, checksums ...string) func(string, importer.Options) error {
	return func(repo string, opts importer.Options) error {
		opts.Checksums = checksums
		_, err := importer.Import(context.Background(), path, repo, opts)
		return err
	}
}

// streamImport imports data announced as size bytes.
func streamImport(data []byte, size int64) func(string, importer.Options) error {
	return func(repo string, opts importer.Options) error {
		stream := &source.Stream{Body: io.NopCloser(bytes.NewReader(data)), Name: "disk.qcow2", Size: size}
		_, err := importer.ImportStream(context.Background(), stream, repo, opts)
		return err
	}
}

// assertNothingLeft: no tag and no upload data in repo's storage. (The
// registry leaves an empty hashstates directory of a cancelled upload
// behind; the upload purger removes those.)
func assertNothingLeft(t *testing.T, srv *dvcrtest.Server, repo string) {
	t.Helper()
	repoDir := filepath.Join(srv.DataDir, "docker", "registry", "v2", "repositories", repo)
	if tags, _ := filepath.Glob(filepath.Join(repoDir, "_manifests", "tags", "*")); len(tags) > 0 {
		t.Errorf("tags left behind: %v", tags)
	}
	if uploads, _ := filepath.Glob(filepath.Join(repoDir, "_uploads", "*", "data")); len(uploads) > 0 {
		t.Errorf("upload data left behind: %v", uploads)
	}
}

func runQemu(t *testing.T, args ...string) {
	t.Helper()
	qemu := dvcrtest.Tool(t, "qemu-img", "apt-get install -y qemu-utils")
	if out, err := execCommand(qemu, args...); err != nil {
		t.Fatalf("qemu-img %v: %v\n%s", args, err, out)
	}
}
