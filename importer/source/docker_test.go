package source

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/dvcr/dvcr/test/testca"
)

type tarEntry struct {
	name string
	body []byte // nil: a directory
}

// tarLayer builds a gzip-compressed layer holding the entries in order.
func tarLayer(t *testing.T, entries ...tarEntry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: tar.TypeReg}
		if e.body == nil {
			hdr.Typeflag, hdr.Mode = tar.TypeDir, 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func image(t *testing.T, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// basicAuth guards h with one user, answering 401 with a Basic challenge
// as registries do.
func basicAuth(user, pass string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func newRegistry() http.Handler {
	return registry.New(registry.Logger(log.New(io.Discard, "", 0)))
}

func push(t *testing.T, ref string, img v1.Image, opts ...remote.Option) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, opts...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

func writeAuthFile(t *testing.T, host, user, pass string) string {
	t.Helper()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	file := filepath.Join(t.TempDir(), "config.json")
	cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, host, auth)
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestDocker(t *testing.T) {
	disk := testData(300 << 10)
	withDisk := image(t,
		tarLayer(t, tarEntry{"etc/", nil}, tarEntry{"etc/hello", []byte("hi")}),
		tarLayer(t, tarEntry{"disk/", nil}, tarEntry{"disk/disk.qcow2", disk}, tarEntry{"disk/other.img", []byte("second")}))
	dotSlash := image(t, tarLayer(t, tarEntry{"./disk/", nil}, tarEntry{"./disk/x.iso", disk}))
	noDisk := image(t,
		tarLayer(t, tarEntry{"etc/hello", []byte("hi")}, tarEntry{"disk/", nil}, tarEntry{"disk/sub/deep.img", []byte("x")}),
		tarLayer(t, tarEntry{"diskette.img", []byte("x")}))

	srv := httptest.NewServer(newRegistry())
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	push(t, host+"/cvi/ubuntu:22.04", withDisk)
	push(t, host+"/cvi/dotslash", dotSlash)
	push(t, host+"/cvi/nodisk", noDisk)
	pushIndex(t, host+"/cvi/index:multi", multiArch(image(t, tarLayer(t, tarEntry{"disk/arm.img", []byte("arm")})), withDisk))
	pushIndex(t, host+"/cvi/index:single", singleArm(withDisk))
	dig, err := withDisk.Digest()
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		ref      string
		opts     Options
		wantName string
		wantErr  error
		wantMsg  string
	}{
		{name: "tag", ref: host + "/cvi/ubuntu:22.04", wantName: "disk.qcow2"},
		{name: "digest", ref: host + "/cvi/ubuntu@" + dig.String(), wantName: "disk.qcow2"},
		{name: "insecure flag", ref: host + "/cvi/ubuntu:22.04", opts: Options{Insecure: true}, wantName: "disk.qcow2"},
		{name: "dot slash and latest", ref: host + "/cvi/dotslash", wantName: "x.iso"},
		{name: "index with one manifest", ref: host + "/cvi/index:single", wantName: "disk.qcow2"},
		{name: "index picks amd64", ref: host + "/cvi/index:multi", wantName: "disk.qcow2"},
		{name: "no disk file", ref: host + "/cvi/nodisk", wantErr: ErrNoDiskFile, wantMsg: "disk/sub/deep.img"},
		{name: "unknown tag", ref: host + "/cvi/ubuntu:nope", wantErr: ErrNotFound},
		{name: "unknown repo", ref: host + "/cvi/nothing:1", wantErr: ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkDocker(t, tc.ref, tc.opts, disk, tc.wantName, tc.wantErr, tc.wantMsg)
		})
	}
}

// checkDocker opens docker://ref and compares the result with the disk
// bytes or the expected error.
func checkDocker(t *testing.T, ref string, opts Options, disk []byte, wantName string, wantErr error, wantMsg string) {
	t.Helper()
	src, err := Parse("docker://"+ref, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, got, err := readAll(t, ctx, src)
	if wantErr != nil || wantMsg != "" {
		checkErr(t, err, wantErr, wantMsg)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if st.Name != wantName || st.Size != int64(len(disk)) || sum(got) != sum(disk) {
		t.Errorf("got name %q size %d, %d bytes (match %v); want %q, %d", st.Name, st.Size, len(got),
			sum(got) == sum(disk), wantName, len(disk))
	}
}

func pushIndex(t *testing.T, ref string, idx v1.ImageIndex) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

// singleArm is an index whose only manifest is not linux/amd64: it is
// still the one to use.
func singleArm(img v1.Image) v1.ImageIndex {
	return mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
}

func multiArch(arm, amd v1.Image) v1.ImageIndex {
	return mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}})
}

func TestDockerAuthAndTLS(t *testing.T) {
	disk := testData(50 << 10)
	img := image(t, tarLayer(t, tarEntry{"disk/", nil}, tarEntry{"disk/win.vmdk", disk}))
	ca := testca.New(t)
	authSrv := httptest.NewServer(basicAuth("bob", "pw", newRegistry()))
	defer authSrv.Close()
	authHost := strings.TrimPrefix(authSrv.URL, "http://")
	push(t, authHost+"/vi/ns/win:1", img, remote.WithAuth(&authn.Basic{Username: "bob", Password: "pw"}))
	tlsSrv := ca.StartTLS(t, newRegistry())
	tlsHost := strings.TrimPrefix(tlsSrv.URL, "https://")
	push(t, tlsHost+"/vi/ns/win:1", img, remote.WithTransport(tlsSrv.Client().Transport))

	tests := []struct {
		name    string
		ref     string
		opts    Options
		wantErr error
		wantMsg string
	}{
		{name: "auth file", ref: authHost + "/vi/ns/win:1", opts: Options{AuthFile: writeAuthFile(t, authHost, "bob", "pw")}},
		{name: "auth file with URL key", ref: authHost + "/vi/ns/win:1", opts: Options{AuthFile: writeAuthFile(t, "http://"+authHost+"/v2/", "bob", "pw")}},
		{name: "wrong password", ref: authHost + "/vi/ns/win:1", opts: Options{AuthFile: writeAuthFile(t, authHost, "bob", "nope")}, wantErr: ErrUnauthorized},
		{name: "no credentials", ref: authHost + "/vi/ns/win:1", opts: Options{AuthFile: writeAuthFile(t, "other:1", "bob", "pw")}, wantErr: ErrUnauthorized},
		{name: "TLS with CA", ref: tlsHost + "/vi/ns/win:1", opts: Options{CABundle: ca.PEM}},
		{name: "TLS without CA", ref: tlsHost + "/vi/ns/win:1", wantMsg: "certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkDocker(t, tc.ref, tc.opts, disk, "win.vmdk", tc.wantErr, tc.wantMsg)
		})
	}
	t.Run("missing auth file", func(t *testing.T) {
		_, err := Parse("docker://"+authHost+"/vi/ns/win:1", Options{AuthFile: filepath.Join(t.TempDir(), "none.json")})
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Parse with a missing auth file: %v", err)
		}
	})
}

// TestDockerTamperedLayer serves a different (valid) blob for the disk
// layer: the disk bytes come out the same, but the layer digest no longer
// matches, and reading to the end must say so.
func TestDockerTamperedLayer(t *testing.T) {
	disk := testData(20 << 10)
	good := tarLayer(t, tarEntry{"disk/d.img", disk})
	evil := tarLayer(t, tarEntry{"disk/d.img", disk}, tarEntry{"etc/extra", []byte("smuggled")})
	goodDigest, err := good.Digest()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := evil.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	evilBlob, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	reg := newRegistry()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+goodDigest.String()) {
			w.Write(evilBlob)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	push(t, host+"/cvi/tampered", image(t, good))
	checkDocker(t, host+"/cvi/tampered", Options{}, disk, "", nil, "verifying the layer")
}
