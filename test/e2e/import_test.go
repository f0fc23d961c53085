package e2e

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/dvcr/dvcr/importer"
	"github.com/dvcr/dvcr/test/dvcrtest"
)

// testDisk is an uncompressed disk file made by a real tool.
type testDisk struct {
	name       string
	path       string
	wantFormat string
	info       dvcrtest.QemuInfo
}

// makeTestDisks makes one small disk of each supported format and layout.
func makeTestDisks(t *testing.T) []testDisk {
	t.Helper()
	dir := t.TempDir()
	specs := []struct {
		name, format string
		extra        []string
	}{
		{"qcow2", "qcow2", nil},
		{"qcow2-v2", "qcow2", []string{"-o", "compat=0.10"}},
		{"raw", "raw", nil},
		{"vmdk", "vmdk", nil},
		{"vmdk-stream", "vmdk", []string{"-o", "subformat=streamOptimized"}},
		{"vdi", "vdi", nil},
	}
	var disks []testDisk
	for _, s := range specs {
		sub := filepath.Join(dir, s.name)
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		path := dvcrtest.MakeDiskFile(t, sub, s.name, s.format, "24M", 1<<20, s.extra...)
		disks = append(disks, testDisk{name: s.name, path: path, wantFormat: s.format})
	}
	disks = append(disks, testDisk{name: "iso", path: makeISO(t, dir, "cd"), wantFormat: "iso"})
	for i := range disks {
		disks[i].info = dvcrtest.Qemu(t, disks[i].path)
	}
	return disks
}

// makeISO builds an ISO 9660 image with xorriso holding 1 MiB of random data.
func makeISO(t *testing.T, dir, name string) string {
	t.Helper()
	xorriso := dvcrtest.Tool(t, "xorriso", "apt-get install -y xorriso")
	content := filepath.Join(dir, name+"-content")
	if err := os.MkdirAll(content, 0o755); err != nil {
		t.Fatal(err)
	}
	dvcrtest.WriteRandomFile(t, filepath.Join(content, "payload.bin"), 1<<20)
	iso := filepath.Join(dir, name+".iso")
	runTool(t, xorriso, "-as", "mkisofs", "-quiet", "-V", "DVCRTEST", "-o", iso, content)
	return iso
}

// compressions are the tools a user compresses images with.
var compressions = []struct {
	name string
	ext  string
	cmd  []string
}{
	{"none", "", nil},
	{"gzip", ".gz", []string{"gzip", "-k", "-f"}},
	{"xz", ".xz", []string{"xz", "-k", "-f", "-T2"}},
	{"zstd", ".zst", []string{"zstd", "-q", "-f"}},
}

// compress runs a real compressor on path and returns the output's path.
func compress(t *testing.T, path string, cmd []string, ext string) string {
	t.Helper()
	if cmd == nil {
		return path
	}
	bin := dvcrtest.Tool(t, cmd[0], "apt-get install -y gzip xz-utils zstd")
	runTool(t, bin, append(cmd[1:], path)...)
	return path + ext
}

func runTool(t *testing.T, bin string, args ...string) {
	t.Helper()
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", bin, args, err, out)
	}
}

// TestImportFormats: every format × compression imports through `dvcr
// import`; the sizes equal qemu-img's; the image pulled back with skopeo
// holds the source's bytes exactly, in the importers' layout.
func TestImportFormats(t *testing.T) {
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{})
	for _, disk := range makeTestDisks(t) {
		for _, c := range compressions {
			t.Run(disk.name+"/"+c.name, func(t *testing.T) {
				src := compress(t, disk.path, c.cmd, c.ext)
				repo := "cvi/" + disk.name + "-" + c.name
				res := dvcrtest.MustImport(t, srv, src, repo)
				assertImported(t, res, disk, src)
				assertPulled(t, srv, repo, src, res)
			})
		}
	}
}

// assertImported checks the result against qemu-img and the file.
func assertImported(t *testing.T, res *importer.Result, disk testDisk, src string) {
	t.Helper()
	st, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	if res.Format != disk.wantFormat {
		t.Errorf("format %q, want %q", res.Format, disk.wantFormat)
	}
	if res.UnpackedBytes != disk.info.VirtualSize {
		t.Errorf("unpacked %d bytes, qemu-img virtual-size %d", res.UnpackedBytes, disk.info.VirtualSize)
	}
	if res.SourceBytes != st.Size() {
		t.Errorf("source %d bytes, the file has %d", res.SourceBytes, st.Size())
	}
	if res.CDROM != (disk.wantFormat == "iso") {
		t.Errorf("cdrom %t for %s", res.CDROM, disk.wantFormat)
	}
	if res.StoredBytes <= st.Size() || res.StoredBytes > st.Size()+8192 {
		t.Errorf("stored %d bytes for a %d-byte file", res.StoredBytes, st.Size())
	}
}

// assertPulled pulls repo:latest with skopeo and compares the disk file and
// the labels with the source.
func assertPulled(t *testing.T, srv *dvcrtest.Server, repo, src string, res *importer.Result) {
	t.Helper()
	layout := dvcrtest.Pull(t, srv, repo, "latest")
	if got := "sha256:" + manifestDigest(t, layout); got != res.Digest {
		t.Errorf("pulled manifest %s, import reported %s", got, res.Digest)
	}
	var man v1.Manifest
	readJSON(t, blobPath(layout, manifestDigest(t, layout)), &man)
	if len(man.Layers) != 1 || man.Layers[0].MediaType != v1.MediaTypeImageLayer {
		t.Fatalf("pulled manifest layers %+v, want one uncompressed tar layer", man.Layers)
	}
	var cfg v1.Image
	readJSON(t, blobPath(layout, man.Config.Digest.Encoded()), &cfg)
	labels := cfg.Config.Labels
	want := map[string]string{
		importer.LabelFormat:      res.Format,
		importer.LabelSize:        strconv.FormatInt(res.SourceBytes, 10),
		importer.LabelVirtualSize: strconv.FormatInt(res.UnpackedBytes, 10),
	}
	for k, v := range want {
		if labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, labels[k], v)
		}
	}
	name, got := untarSingle(t, blobPath(layout, man.Layers[0].Digest.Encoded()))
	if name != "disk/"+filepath.Base(src) {
		t.Errorf("layer holds %q, want disk/%s", name, filepath.Base(src))
	}
	wantBytes, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, wantBytes) {
		t.Fatalf("pulled disk differs from the source (%d vs %d bytes)", len(got), len(wantBytes))
	}
}

// TestImportStdinAndMount: a stream of unknown length (stdin) is spooled and
// imported; dvcr:// then links it into another repository without copying:
// the number of blobs in storage stays the same.
func TestImportStdinAndMount(t *testing.T) {
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{})
	path := dvcrtest.MakeDiskFile(t, t.TempDir(), "piped", "qcow2", "32M", 1<<20)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	run := dvcrtest.ImportWith(t, srv, bytes.NewReader(data), "-", "vi/default/piped")
	if run.ExitCode != 0 {
		t.Fatalf("import from stdin: %s", run.Stderr)
	}
	if run.Result.Format != "qcow2" || run.Result.SourceBytes != int64(len(data)) || run.Result.UnpackedBytes != 32<<20 {
		t.Fatalf("stdin import: %+v", run.Result)
	}
	blobs := countBlobs(t, srv)
	for _, dst := range []string{"cvi/linked", "vi/other/linked"} {
		res := dvcrtest.MustImport(t, srv, "dvcr://vi/default/piped", dst)
		if res.Digest != run.Result.Digest || res.Format != "qcow2" || res.UnpackedBytes != 32<<20 || res.StoredBytes != run.Result.StoredBytes {
			t.Errorf("dvcr:// into %s: %+v, source %+v", dst, res, run.Result)
		}
	}
	if after := countBlobs(t, srv); after != blobs {
		t.Errorf("blobs in storage: %d before the mounts, %d after; a mount must not copy", blobs, after)
	}
	_, got := untarSingle(t, pulledLayer(t, srv, "cvi/linked"))
	if !bytes.Equal(got, data) {
		t.Fatal("the linked image does not hold the source bytes")
	}
	missing := dvcrtest.Import(t, srv, "dvcr://cvi/absent", "cvi/from-absent")
	if missing.ExitCode == 0 || !strings.Contains(missing.Stderr, "cvi/absent") {
		t.Errorf("dvcr:// of a missing image: exit %d\n%s", missing.ExitCode, missing.Stderr)
	}
}

// countBlobs counts the blob files of the filesystem storage.
func countBlobs(t *testing.T, srv *dvcrtest.Server) int {
	t.Helper()
	n := 0
	root := filepath.Join(srv.DataDir, "docker", "registry", "v2", "blobs")
	err := filepath.WalkDir(root, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == "data" {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// pulledLayer pulls repo:latest and returns the path of its only layer.
func pulledLayer(t *testing.T, srv *dvcrtest.Server, repo string) string {
	t.Helper()
	layout := dvcrtest.Pull(t, srv, repo, "latest")
	var man v1.Manifest
	readJSON(t, blobPath(layout, manifestDigest(t, layout)), &man)
	return blobPath(layout, man.Layers[0].Digest.Encoded())
}

// assertNoTag checks that repo has no latest tag.
func assertNoTag(t *testing.T, srv *dvcrtest.Server, repo string) {
	t.Helper()
	resp, err := http.Get(srv.URL() + "/v2/" + repo + "/manifests/latest")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("%s:latest after a refused import: HTTP %d %s, want 404", repo, resp.StatusCode, body)
	}
}
