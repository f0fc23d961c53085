package console

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/dvcr/dvcr/api/v1alpha2"
	"github.com/dvcr/dvcr/importer"
	"github.com/dvcr/dvcr/naming"
)

// diskGen is a disk file generated on the fly, never held in memory: a
// random MiB with each copy's index stamped in, so no two MiB are equal.
type diskGen struct {
	block []byte
	off   int64
	size  int64
}

func newDiskGen(size int64) *diskGen {
	b := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return &diskGen{block: b, size: size}
}

func (g *diskGen) Read(p []byte) (int, error) {
	if g.off >= g.size {
		return 0, io.EOF
	}
	in := g.off % int64(len(g.block))
	n := copy(p, g.block[in:])
	n = int(min(int64(n), g.size-g.off))
	// The first 8 bytes of each MiB carry its index.
	for i := 0; i < n; i++ {
		if pos := in + int64(i); pos < 8 {
			var idx [8]byte
			binary.LittleEndian.PutUint64(idx[:], uint64(g.off/int64(len(g.block)))+1)
			p[i] ^= idx[pos]
		}
	}
	g.off += int64(n)
	return n, nil
}

// genLayer is an importers' layout layer of a generated disk file: tar
// header, data, end of archive.
type genLayer struct {
	name   string
	size   int64
	header []byte
	digest digest.Digest // of the layer
	sha    []byte        // of the disk file
}

func newGenLayer(t *testing.T, name string, size int64) *genLayer {
	t.Helper()
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	if err := tw.WriteHeader(&tar.Header{Name: importer.LayerDir + "/" + name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Flush()
	l := &genLayer{name: name, size: size, header: hdr.Bytes()}
	// One pass: the layer's digest, and the disk file's hash of the same
	// bytes without the header and the tail.
	layer, file := digest.Canonical.Digester(), sha256.New()
	data := io.TeeReader(newDiskGen(size), file)
	src := io.MultiReader(bytes.NewReader(l.header), data, io.LimitReader(zeros{}, l.length()-int64(len(l.header))-size))
	if _, err := io.Copy(layer.Hash(), src); err != nil {
		t.Fatal(err)
	}
	l.digest, l.sha = layer.Digest(), file.Sum(nil)
	return l
}

func (l *genLayer) length() int64 {
	return int64(len(l.header)) + l.size + (512-l.size%512)%512 + 1024
}

func (l *genLayer) open() io.Reader {
	return io.MultiReader(bytes.NewReader(l.header), newDiskGen(l.size),
		io.LimitReader(zeros{}, (512-l.size%512)%512+1024))
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// fakeRegistry serves one image, any repository's :latest, whose layer is
// l; manifestDigest, when set, is the layer digest the manifest claims.
func fakeRegistry(t *testing.T, l *genLayer, claimed digest.Digest) string {
	t.Helper()
	if claimed == "" {
		claimed = l.digest
	}
	cfg, _ := json.Marshal(v1.Image{Config: v1.ImageConfig{Labels: map[string]string{
		importer.LabelFormat: "raw", importer.LabelSize: strconv.FormatInt(l.size, 10), importer.LabelVirtualSize: strconv.FormatInt(l.size, 10),
	}}})
	cfgDigest := digest.FromBytes(cfg)
	manifest, _ := json.Marshal(v1.Manifest{
		MediaType: v1.MediaTypeImageManifest,
		Config:    v1.Descriptor{MediaType: v1.MediaTypeImageConfig, Digest: cfgDigest, Size: int64(len(cfg))},
		Layers:    []v1.Descriptor{{MediaType: v1.MediaTypeImageLayer, Digest: claimed, Size: l.length()}},
	})
	manifest = append([]byte(`{"schemaVersion":2,`), manifest[1:]...)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case p == "/v2/":
			w.WriteHeader(http.StatusOK)
		case strings.HasSuffix(p, "/manifests/latest"):
			w.Header().Set("Content-Type", v1.MediaTypeImageManifest)
			_, _ = w.Write(manifest)
		case strings.HasSuffix(p, "/blobs/"+cfgDigest.String()):
			_, _ = w.Write(cfg)
		case strings.HasSuffix(p, "/blobs/"+claimed.String()):
			body, off := l.open(), int64(0)
			if rg := r.Header.Get("Range"); rg != "" {
				off, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"), 10, 64)
				w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, l.length()-1, l.length()))
				_, _ = io.CopyN(io.Discard, body, off)
			}
			w.Header().Set("Content-Length", strconv.FormatInt(l.length()-off, 10))
			if off > 0 {
				w.WriteHeader(http.StatusPartialContent)
			}
			_, _ = io.Copy(w, body)
		default:
			http.Error(w, `{"errors":[{"code":"NAME_UNKNOWN"}]}`, http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// downloadConsole is a console whose API server (a fake) holds the cluster
// images named in phases, each with its phase, and whose registry is
// registry.
func downloadConsole(t *testing.T, registry string, phases map[string]string, reactors ...k8stesting.ReactionFunc) *httptest.Server {
	t.Helper()
	var images []fakeImage
	for name, phase := range phases {
		images = append(images, fakeImage{name: name, phase: phase})
	}
	s := fakeImageConsole(t, Options{Registry: Registry{Address: registry}}, images, reactors...)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/download/{kind}/{name}", s.download)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// fakeImage is a cluster image of the fake API server, with the status a
// finished import gives it: in registry dvcr.test, repository cvi/<name>.
type fakeImage struct {
	name, phase, format string
}

// fakeImageConsole is a console with opts whose API server (a fake) holds
// images.
func fakeImageConsole(t *testing.T, opts Options, images []fakeImage, reactors ...k8stesting.ReactionFunc) *Server {
	t.Helper()
	var objs []k8sruntime.Object
	for _, img := range images {
		status := map[string]any{"phase": img.phase, "target": map[string]any{"registryURL": "dvcr.test/cvi/" + img.name + ":latest"}}
		if img.format != "" {
			status["format"] = img.format
		}
		objs = append(objs, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "ClusterVirtualImage",
			"metadata": map[string]any{"name": img.name, "creationTimestamp": "2025-01-02T03:04:05Z"},
			"spec":     map[string]any{"dataSource": map[string]any{"type": "Upload"}},
			"status":   status,
		}})
	}
	cvi := v1alpha2.Resources[naming.KindCVI]
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(k8sruntime.NewScheme(),
		map[schema.GroupVersionResource]string{cvi: "ClusterVirtualImageList"}, objs...)
	for _, r := range reactors {
		dyn.PrependReactor("get", "*", r)
	}
	if opts.RawConversions <= 0 {
		opts.RawConversions = DefaultRawConversions
	}
	return &Server{dynamic: dyn, sessions: newSessions(), opts: opts, conversions: make(chan struct{}, opts.RawConversions)}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestDownloadStreams1GiB: a 1 GiB disk file, generated on the fly by the
// registry, comes through the download handler with its name and size in
// the headers and its bytes intact, and the heap stays bounded: the console
// streams, it does not hold the image.
func TestDownloadStreams1GiB(t *testing.T) {
	const size = 1 << 30
	l := newGenLayer(t, "big.raw", size)
	console := downloadConsole(t, fakeRegistry(t, l, ""), map[string]string{"big": "Ready"})
	base := heapInUse()
	resp, err := http.Get(console.URL + "/api/download/cvi/big")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != size ||
		resp.Header.Get("Content-Disposition") != `attachment; filename=big.raw` {
		t.Fatalf("HTTP %d, Content-Length %d, Content-Disposition %q", resp.StatusCode, resp.ContentLength, resp.Header.Get("Content-Disposition"))
	}
	h := sha256.New()
	buf := make([]byte, 1<<20)
	var got int64
	var peak uint64
	for {
		n, err := resp.Body.Read(buf)
		h.Write(buf[:n])
		if got/(64<<20) != (got+int64(n))/(64<<20) {
			peak = max(peak, heapInUse())
		}
		got += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
	}
	if got != size || !bytes.Equal(h.Sum(nil), l.sha) {
		t.Fatalf("received %d bytes with sha256 %x, want %d with %x", got, h.Sum(nil), int64(size), l.sha)
	}
	if peak > base+64<<20 {
		t.Errorf("heap in use grew from %d MiB to %d MiB while streaming", base>>20, peak>>20)
	}
	t.Logf("heap in use: %d MiB before, %d MiB at most while streaming", base>>20, peak>>20)
}

// TestDownloadDigestMismatchAborts: a layer that does not hash to the
// manifest's digest ends in a cut connection, short of Content-Length:
// the browser shows a failed download, never a complete wrong file.
func TestDownloadDigestMismatchAborts(t *testing.T) {
	const size = 4 << 20
	l := newGenLayer(t, "disk.qcow2.xz", size)
	wrong := digest.FromString("another layer")
	console := downloadConsole(t, fakeRegistry(t, l, wrong), map[string]string{"bad": "Ready"})
	resp, err := http.Get(console.URL + "/api/download/cvi/bad")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != size || resp.Header.Get("Content-Disposition") != `attachment; filename=disk.qcow2.xz` {
		t.Fatalf("HTTP %d, Content-Length %d, Content-Disposition %q", resp.StatusCode, resp.ContentLength, resp.Header.Get("Content-Disposition"))
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil || n >= size {
		t.Fatalf("read %d of %d bytes, error %v: want a cut connection before the end", n, int64(size), err)
	}
}

func TestDownloadRefusals(t *testing.T) {
	l := newGenLayer(t, "small.raw", 1<<20)
	forbidden := func(a k8stesting.Action) (bool, k8sruntime.Object, error) {
		if a.(k8stesting.GetAction).GetName() != "secret" {
			return false, nil, nil
		}
		return true, nil, apierrors.NewForbidden(v1alpha2.Resources[naming.KindCVI].GroupResource(), "secret", fmt.Errorf("RBAC says no"))
	}
	console := downloadConsole(t, fakeRegistry(t, l, ""), map[string]string{"busy": "Provisioning", "secret": "Ready"}, forbidden)
	tests := []struct {
		name     string
		path     string
		wantCode int
		wantText string
	}{
		{"missing image", "/api/download/cvi/missing", http.StatusNotFound, "not found"},
		{"forbidden by RBAC", "/api/download/cvi/secret", http.StatusForbidden, "RBAC says no"},
		{"not Ready", "/api/download/cvi/busy", http.StatusConflict, "not Ready"},
		{"unknown kind", "/api/download/vd/x", http.StatusBadRequest, "unknown image kind"},
		{"project image without namespace", "/api/download/vi/x", http.StatusBadRequest, "namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Get(console.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantCode || !strings.Contains(string(body), tt.wantText) || resp.Header.Get("Content-Disposition") != "" {
				t.Errorf("HTTP %d %s (Content-Disposition %q), want %d with %q", resp.StatusCode, body, resp.Header.Get("Content-Disposition"), tt.wantCode, tt.wantText)
			}
		})
	}
}
