package console

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dvcr/dvcr/test/dvcrtest"
)

// rawFixture is a real dvcr serve holding images imported with dvcr import
// from files made by qemu-img and xorriso, and the references they are
// checked against.
type rawFixture struct {
	registry string // URL of dvcr serve
	images   []fakeImage
	files    map[string]string // image name → its source file
	ref      map[string]string // image name → qemu-img convert -O raw of it
}

// newRawFixture imports: qcow (qcow2, 64 MiB virtual, 5 MiB of data, the
// rest unallocated), vmdk and vdi (the same data in those formats), big
// (qcow2, 1 GiB virtual, 16 MiB of data), plain (a
// raw disk), plainz (plain gzip-compressed), packed (a gzip-compressed
// qcow2) and cd (an ISO).
func newRawFixture(t *testing.T) *rawFixture {
	t.Helper()
	dir := t.TempDir()
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{})
	fx := &rawFixture{registry: srv.URL(), files: map[string]string{}, ref: map[string]string{}}
	fx.files["qcow"] = dvcrtest.MakeDiskFile(t, dir, "qcow", "qcow2", "64M", 5<<20)
	fx.files["vmdk"] = dvcrtest.MakeDiskFile(t, dir, "vmdk", "vmdk", "24M", 3<<20)
	fx.files["vdi"] = dvcrtest.MakeDiskFile(t, dir, "vdi", "vdi", "24M", 3<<20)
	fx.files["big"] = dvcrtest.MakeDiskFile(t, dir, "big", "qcow2", "1G", 16<<20)
	fx.files["plain"] = dvcrtest.MakeDiskFile(t, dir, "plain", "raw", "8M", 3<<20)
	fx.files["plainz"] = gzipFile(t, fx.files["plain"], filepath.Join(dir, "plainz.raw.gz"))
	fx.files["packed"] = gzipFile(t, fx.files["qcow"], filepath.Join(dir, "packed.qcow2.gz"))
	fx.files["cd"] = makeISO(t, dir)
	for _, name := range []string{"qcow", "vmdk", "vdi", "big"} {
		fx.ref[name] = filepath.Join(dir, name+"-qemu.raw")
		qemuImg(t, "convert", "-O", "raw", fx.files[name], fx.ref[name])
	}
	for _, name := range []string{"qcow", "vmdk", "vdi", "big", "plain", "plainz", "packed", "cd"} {
		res := dvcrtest.MustImport(t, srv, fx.files[name], "cvi/"+name)
		fx.images = append(fx.images, fakeImage{name: name, phase: "Ready", format: res.Format})
	}
	return fx
}

func qemuImg(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(dvcrtest.Tool(t, "qemu-img", "apt-get install -y qemu-utils"), args...).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img %v: %v\n%s", args, err, out)
	}
}

func gzipFile(t *testing.T, src, dst string) string {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	zw := gzip.NewWriter(out)
	if _, err := io.Copy(zw, in); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// makeISO builds an ISO 9660 image with xorriso: a format no raw
// conversion takes.
func makeISO(t *testing.T, dir string) string {
	t.Helper()
	content := filepath.Join(dir, "cd-content")
	if err := os.MkdirAll(content, 0o755); err != nil {
		t.Fatal(err)
	}
	dvcrtest.WriteRandomFile(t, filepath.Join(content, "payload.bin"), 1<<20)
	iso := filepath.Join(dir, "cd.iso")
	xorriso := dvcrtest.Tool(t, "xorriso", "apt-get install -y xorriso")
	if out, err := exec.Command(xorriso, "-as", "mkisofs", "-quiet", "-V", "DVCRTEST", "-o", iso, content).CombinedOutput(); err != nil {
		t.Fatalf("xorriso: %v\n%s", err, out)
	}
	return iso
}

// rawConsole is a console over the fixture's images that converts into its
// own directory, and counts its download handlers still running: a test
// waits for them (a handler outlives a client that went away) before it
// looks for leftovers.
type rawConsole struct {
	URL     string
	dir     string
	running atomic.Int64
}

func newRawConsole(t *testing.T, fx *rawFixture, registry string, conversions int) *rawConsole {
	t.Helper()
	c := &rawConsole{dir: t.TempDir()}
	s := fakeImageConsole(t, Options{Registry: Registry{Address: registry}, DownloadDir: c.dir, RawConversions: conversions}, fx.images)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/download/{kind}/{name}", func(w http.ResponseWriter, r *http.Request) {
		c.running.Add(1)
		defer c.running.Add(-1)
		s.download(w, r)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c.URL = srv.URL
	return c
}

// settle waits until no download handler runs, then fails the test for
// any temporary file left in the download directory or still open (an
// unlinked file holds its space until closed).
func (c *rawConsole) settle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for c.running.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := c.running.Load(); n > 0 {
		t.Fatalf("%d download handlers still running after 30s", n)
	}
	if left := leftovers(t, c.dir); len(left) > 0 {
		t.Errorf("left behind: %s", strings.Join(left, ", "))
	}
}

// leftovers are the files in dir and the files under dir this process
// still has open, deleted or not.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	var left []string
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		left = append(left, e.Name())
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("listing open files: %v", err)
	}
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.HasPrefix(target, dir+string(filepath.Separator)) {
			left = append(left, "open: "+target)
		}
	}
	return left
}

// get requests path with the given headers.
func get(t *testing.T, ctx context.Context, url string, header ...string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return http.DefaultClient.Do(req)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
