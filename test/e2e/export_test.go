package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dvcr/dvcr/exporter"
	"github.com/dvcr/dvcr/test/dvcrtest"
)

// TestExportFormats: every format × compression imported with `dvcr
// import` comes back from `dvcr export` byte for byte; with --decompress a
// compressed one comes back as the uncompressed disk; the -o json result
// describes the file written.
func TestExportFormats(t *testing.T) {
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{})
	for _, disk := range makeTestDisks(t) {
		for _, c := range compressions {
			t.Run(disk.name+"/"+c.name, func(t *testing.T) {
				src := compress(t, disk.path, c.cmd, c.ext)
				repo := "cvi/" + disk.name + "-" + c.name
				dvcrtest.MustImport(t, srv, src, repo)
				out := filepath.Join(t.TempDir(), "out")
				res := dvcrtest.MustExport(t, srv.Addr, repo, out)
				assertSameFile(t, out, src)
				assertResult(t, res, out, disk.wantFormat)
				if c.cmd == nil {
					return
				}
				dec := filepath.Join(t.TempDir(), "dec")
				res = dvcrtest.MustExport(t, srv.Addr, repo, dec, "--decompress")
				assertSameFile(t, dec, disk.path)
				assertResult(t, res, dec, disk.wantFormat)
				if !res.Decompressed || res.Compression != c.name {
					t.Errorf("decompressed %t compression %q, want true %q", res.Decompressed, res.Compression, c.name)
				}
			})
		}
	}
}

// assertSameFile compares two files like cmp.
func assertSameFile(t *testing.T, got, want string) {
	t.Helper()
	if out, err := exec.Command("cmp", got, want).CombinedOutput(); err != nil {
		t.Fatalf("cmp %s %s: %v: %s", got, want, err, out)
	}
}

// assertResult checks the -o json result against the written file.
func assertResult(t *testing.T, res *exporter.Result, path, format string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if res.Bytes != int64(len(data)) || res.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("result bytes %d sha256 %s; the file has %d bytes, sha256 %x", res.Bytes, res.SHA256, len(data), sum)
	}
	if res.Format != format || res.File != path || res.Seconds <= 0 {
		t.Errorf("result format %q file %q seconds %f, want %q %q > 0", res.Format, res.File, res.Seconds, format, path)
	}
}

// TestExportDefaultNameAndStdout: without FILE the disk file's own name in
// the working directory; with - standard output.
func TestExportDefaultNameAndStdout(t *testing.T) {
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{})
	dir := t.TempDir()
	src := dvcrtest.MakeDiskFile(t, dir, "noble", "qcow2", "8M", 1<<20)
	dvcrtest.MustImport(t, srv, src, "cvi/noble")
	work := t.TempDir()
	cmd := exec.Command(dvcrtest.Binary(t, "dvcr"), "export", "--registry", srv.Addr, "cvi/noble")
	cmd.Dir = work
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dvcr export: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "Exported cvi/noble:latest to noble.qcow2") {
		t.Errorf("summary %q", out)
	}
	assertSameFile(t, filepath.Join(work, "noble.qcow2"), src)
	var stdout, stderr bytes.Buffer
	cmd = exec.Command(dvcrtest.Binary(t, "dvcr"), "export", "--registry", srv.Addr, "cvi/noble", "-")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("dvcr export -: %v\n%s", err, stderr.String())
	}
	want, _ := os.ReadFile(src)
	if !bytes.Equal(stdout.Bytes(), want) {
		t.Errorf("stdout holds %d bytes, not the %d of the source", stdout.Len(), len(want))
	}
}

// TestExportErrors: a missing repository, a missing tag, an image not in
// the importers' layout and a full disk each say so and exit non-zero.
func TestExportErrors(t *testing.T) {
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{})
	src := dvcrtest.MakeDiskFile(t, t.TempDir(), "x", "raw", "4M", 1<<20)
	dvcrtest.MustImport(t, srv, src, "cvi/x")
	pushForeignImage(t, srv, "cvi/foreign")
	out := filepath.Join(t.TempDir(), "out")
	for _, c := range []struct {
		name, repo, file, want string
	}{
		{"missing repository", "cvi/nope", out, "dvcr: export: cvi/nope: repository not found"},
		{"missing tag", "cvi/x:v9", out, "cvi/x: tag v9 not found (tags: latest)"},
		{"missing tag latest", "cvi/foreign", out, "cvi/foreign: tag latest not found (tags: v1)"},
		{"not the layout", "cvi/foreign:v1", out, "not a disk image in the importers' layout"},
		{"full disk", "cvi/x", "/dev/full", "writing /dev/full: no space left on device: 0 bytes written of 4194304"},
	} {
		t.Run(c.name, func(t *testing.T) {
			run := dvcrtest.Export(t, srv.Addr, c.repo, c.file)
			if run.ExitCode == 0 || !strings.Contains(run.Stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want non-zero and %q", run.ExitCode, run.Stderr, c.want)
			}
		})
	}
}

// pushForeignImage tags repo:v1 as an image with a config without the
// importers' labels.
func pushForeignImage(t *testing.T, srv *dvcrtest.Server, repo string) {
	t.Helper()
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	layer := []byte("not a tar")
	dvcrtest.UploadBlob(t, srv.URL(), repo, cfg)
	dvcrtest.UploadBlob(t, srv.URL(), repo, layer)
	man := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + digestOf(cfg) + `","size":` + strconv.Itoa(len(cfg)) + `},` +
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"` + digestOf(layer) + `","size":` + strconv.Itoa(len(layer)) + `}]}`
	putRawManifest(t, srv.URL(), repo, "v1", man)
}

func digestOf(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

// putRawManifest PUTs an OCI manifest as repo:tag.
func putRawManifest(t *testing.T, base, repo, tag, man string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, base+"/v2/"+repo+"/manifests/"+tag, strings.NewReader(man))
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT manifest %s:%s: %s", repo, tag, resp.Status)
	}
}
