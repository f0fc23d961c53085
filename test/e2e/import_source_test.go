package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/crypto/bcrypt"

	"github.com/dvcr/dvcr/test/dvcrtest"
	"github.com/dvcr/dvcr/test/testca"
)

// modTime is the Last-Modified of served files (a validator for If-Range).
var modTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// flakyFile serves one file over HTTP(S). The first full GET drops the
// connection after half the body; it records the Range headers it gets.
// With noLength it sends no Content-Length (chunked).
type flakyFile struct {
	data     []byte
	noLength bool
	mu       sync.Mutex
	dropped  bool
	ranges   []string
}

func (f *flakyFile) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.ranges = append(f.ranges, r.Header.Get("Range"))
	drop := !f.dropped && r.Header.Get("Range") == ""
	f.dropped = f.dropped || drop
	f.mu.Unlock()
	if f.noLength && !drop {
		w.Header().Set("Accept-Ranges", "bytes")
		_, _ = w.Write(f.data)
		return
	}
	if !drop {
		http.ServeContent(w, r, "disk", modTime, bytes.NewReader(f.data))
		return
	}
	f.dropHalf(w)
}

// dropHalf sends the headers and half the body, then resets the
// connection: with a Content-Length, or chunked without the last chunk (a
// server that sends no length).
func (f *flakyFile) dropHalf(w http.ResponseWriter) {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	framing := fmt.Sprintf("Content-Length: %d", len(f.data))
	if f.noLength {
		framing = "Transfer-Encoding: chunked"
	}
	fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\n%s\r\nAccept-Ranges: bytes\r\nLast-Modified: %s\r\nConnection: close\r\n\r\n",
		framing, modTime.UTC().Format(http.TimeFormat))
	half := f.data[:len(f.data)/2]
	if f.noLength {
		fmt.Fprintf(buf, "%x\r\n", len(half))
	}
	_, _ = buf.Write(half)
	_ = buf.Flush()
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0) // a reset, as a dropped connection looks
	}
}

func (f *flakyFile) rangesSeen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ranges...)
}

// TestImportHTTPS: an https:// source with its own CA, dropped at 50%,
// resumes with a Range request and imports byte-identical; without the CA
// the import fails naming the certificate.
func TestImportHTTPS(t *testing.T) {
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{})
	ca := testca.New(t)
	caFile := ca.WritePEM(t)
	src := compress(t, dvcrtest.MakeDiskFile(t, t.TempDir(), "web", "qcow2", "64M", 6<<20), []string{"xz", "-k", "-f", "-0"}, ".xz")
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	half := fmt.Sprintf("bytes=%d-", len(data)/2)
	for _, noLength := range []bool{false, true} {
		t.Run(fmt.Sprintf("content-length=%t", !noLength), func(t *testing.T) {
			file := &flakyFile{data: data, noLength: noLength}
			web := ca.StartTLS(t, file)
			repo := fmt.Sprintf("cvi/web-%t", noLength)
			run := dvcrtest.Import(t, srv, web.URL+"/images/web.qcow2.xz", repo, "--ca-file", caFile)
			if run.ExitCode != 0 {
				t.Fatalf("import: %s", run.Stderr)
			}
			if run.Result.Format != "qcow2" || run.Result.Compression != "xz" || run.Result.UnpackedBytes != 64<<20 || run.Result.SourceBytes != int64(len(data)) {
				t.Errorf("result %+v", run.Result)
			}
			if seen := file.rangesSeen(); len(seen) != 2 || seen[1] != half {
				t.Errorf("requests' Range headers %q, want a resume with %q", seen, half)
			}
			if !hasEvent(run, "retry", "resuming") {
				t.Errorf("no retry event in %+v", run.Events)
			}
			name, got := untarSingle(t, pulledLayer(t, srv, repo))
			if name != "disk/web.qcow2.xz" || !bytes.Equal(got, data) {
				t.Fatalf("pulled %s (%d bytes), want disk/web.qcow2.xz byte-identical (%d bytes)", name, len(got), len(data))
			}
		})
	}
	t.Run("unknown CA", func(t *testing.T) {
		web := ca.StartTLS(t, &flakyFile{data: data, dropped: true})
		run := dvcrtest.Import(t, srv, web.URL+"/web.qcow2.xz", "cvi/web-untrusted")
		if run.ExitCode == 0 || !strings.Contains(run.Stderr, "certificate") {
			t.Fatalf("import without the CA: exit %d\n%s", run.ExitCode, run.Stderr)
		}
		assertNoTag(t, srv, "cvi/web-untrusted")
	})
	t.Run("404", func(t *testing.T) {
		web := ca.StartTLS(t, http.NotFoundHandler())
		run := dvcrtest.Import(t, srv, web.URL+"/missing.img", "cvi/web-missing", "--ca-file", caFile)
		if run.ExitCode == 0 || !strings.Contains(run.Stderr, "404") || !strings.Contains(run.Stderr, "/missing.img") {
			t.Fatalf("import of a 404: exit %d\n%s", run.ExitCode, run.Stderr)
		}
	})
}

func hasEvent(run dvcrtest.ImportRun, phase, text string) bool {
	for _, e := range run.Events {
		if e.Phase == phase && strings.Contains(e.Message, text) {
			return true
		}
	}
	return false
}

// TestImportFromRegistry: a docker:// source in a real registry with
// authentication (a second dvcr serve with htpasswd), laid out as
// `FROM scratch` + `COPY disk.qcow2 /disk/`, with credentials from --authfile.
func TestImportFromRegistry(t *testing.T) {
	htpasswd := writeHtpasswd(t, "importer", "s3cret")
	source := dvcrtest.StartServer(t, dvcrtest.ServerOptions{
		Registry: fmt.Sprintf("auth:\n  htpasswd:\n    realm: dvcr-test\n    path: %s\n", htpasswd),
	})
	target := dvcrtest.StartServer(t, dvcrtest.ServerOptions{})
	disk := dvcrtest.MakeDiskFile(t, t.TempDir(), "golden", "qcow2", "48M", 2<<20)
	data, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	ref := source.Addr + "/cvi/golden:v1"
	pushContainerDisk(t, ref, "disk/golden.qcow2", data, &authn.Basic{Username: "importer", Password: "s3cret"})

	good := writeAuthFile(t, source.Addr, "importer", "s3cret")
	res := dvcrtest.MustImport(t, target, "docker://"+ref, "vi/default/golden", "--authfile", good, "--insecure")
	if res.Format != "qcow2" || res.UnpackedBytes != 48<<20 || res.SourceBytes != int64(len(data)) {
		t.Errorf("result %+v", res)
	}
	name, got := untarSingle(t, pulledLayer(t, target, "vi/default/golden"))
	if name != "disk/golden.qcow2" || !bytes.Equal(got, data) {
		t.Fatalf("pulled %s, want disk/golden.qcow2 byte-identical", name)
	}

	bad := writeAuthFile(t, source.Addr, "importer", "wrong")
	run := dvcrtest.Import(t, target, "docker://"+ref, "vi/default/denied", "--authfile", bad, "--insecure")
	if run.ExitCode == 0 || !strings.Contains(strings.ToLower(run.Stderr), "unauthorized") {
		t.Fatalf("import with a wrong password: exit %d\n%s", run.ExitCode, run.Stderr)
	}
	assertNoTag(t, target, "vi/default/denied")
}

// pushContainerDisk pushes a one-layer image holding file (gzip layer, as
// docker build makes it) to ref.
func pushContainerDisk(t *testing.T, ref, file string, data []byte, auth authn.Authenticator) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "disk/", Mode: 0o755})
	_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: file, Mode: 0o644, Size: int64(len(data))})
	_, _ = tw.Write(data)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layerBytes := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layerBytes)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, remote.WithAuth(auth)); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
}

func writeHtpasswd(t *testing.T, user, pass string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(path, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeAuthFile(t *testing.T, host, user, pass string) string {
	t.Helper()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	path := filepath.Join(t.TempDir(), "config.json")
	content := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, host, auth)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
