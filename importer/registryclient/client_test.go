package registryclient_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/dvcr/dvcr/importer/registryclient"
	"github.com/dvcr/dvcr/registry"
	"github.com/dvcr/dvcr/test/dvcrtest"
)

// testRegistry is DVCR's registry (distribution with the write gate) on
// filesystem storage, in process, behind an optional request hook.
type testRegistry struct {
	srv  *registry.Server
	http *httptest.Server
	hook func(w http.ResponseWriter, r *http.Request, next http.Handler) bool
}

func startRegistry(t *testing.T) *testRegistry {
	t.Helper()
	srv := dvcrtest.NewRegistry(t, "filesystem: {rootdirectory: "+t.TempDir()+"}", "")
	tr := &testRegistry{srv: srv}
	tr.http = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tr.hook != nil && tr.hook(w, r, srv.Handler()) {
			return
		}
		srv.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(tr.http.Close)
	return tr
}

func (tr *testRegistry) client(t *testing.T, opts registryclient.Options, repos ...string) *registryclient.Client {
	t.Helper()
	c, err := registryclient.New(context.Background(), tr.http.URL, repos, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// upload sends data as a blob of repo through a chunked session.
func upload(t *testing.T, c *registryclient.Client, repo string, data []byte) digest.Digest {
	t.Helper()
	ctx := context.Background()
	up, err := c.StartUpload(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	n, err := up.Copy(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(data)) {
		t.Fatalf("sent %d bytes of %d", n, len(data))
	}
	d := digest.FromBytes(data)
	if err := up.Commit(ctx, d); err != nil {
		t.Fatal(err)
	}
	return d
}

// getBlob reads a blob over plain HTTP.
func getBlob(t *testing.T, tr *testRegistry, repo string, d digest.Digest) []byte {
	t.Helper()
	resp, err := http.Get(tr.http.URL + "/v2/" + repo + "/blobs/" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET blob %s: %s", d, resp.Status)
	}
	b, _ := io.ReadAll(resp.Body)
	return b
}

func TestChunkedUpload(t *testing.T) {
	tr := startRegistry(t)
	for _, size := range []int{0, 1, 64 << 10, 64<<10 + 1, 1<<20 + 123} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			c := tr.client(t, registryclient.Options{ChunkSize: 64 << 10}, "cvi/chunks")
			data := randomBytes(size)
			d := upload(t, c, "cvi/chunks", data)
			if got := getBlob(t, tr, "cvi/chunks", d); !bytes.Equal(got, data) {
				t.Fatalf("blob differs: %d bytes back, %d sent", len(got), len(data))
			}
		})
	}
}

// TestUploadWaitsOutReadOnly: the registry turns read-only when the second
// chunk arrives; the client waits (telling why) and finishes afterwards.
func TestUploadWaitsOutReadOnly(t *testing.T) {
	tr := startRegistry(t)
	var patches atomic.Int32
	var once sync.Once
	tr.hook = func(_ http.ResponseWriter, r *http.Request, _ http.Handler) bool {
		if r.Method == http.MethodPatch && patches.Add(1) == 2 {
			once.Do(func() {
				hold, err := tr.srv.Gate().Enter(context.Background(), "garbage collection", time.Second)
				if err != nil {
					t.Error(err)
				}
				time.AfterFunc(1500*time.Millisecond, hold.Release)
			})
		}
		return false
	}
	var waits []string
	var mu sync.Mutex
	c := tr.client(t, registryclient.Options{ChunkSize: 64 << 10, OnWait: func(reason string, _ time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		waits = append(waits, reason)
	}}, "cvi/window")
	data := randomBytes(256 << 10)
	start := time.Now()
	d := upload(t, c, "cvi/window", data)
	if time.Since(start) < time.Second {
		t.Errorf("upload finished in %s, inside the window", time.Since(start))
	}
	if len(waits) == 0 || !strings.Contains(waits[0], "read-only") {
		t.Errorf("waits %q, want the read-only reason", waits)
	}
	if got := getBlob(t, tr, "cvi/window", d); !bytes.Equal(got, data) {
		t.Fatal("blob differs after the window")
	}
}

// TestUploadResumesAfterDrop: the connection of a chunk drops after the
// registry took half of it; the client asks what it holds and sends the rest.
func TestUploadResumesAfterDrop(t *testing.T) {
	tr := startRegistry(t)
	var patches atomic.Int32
	tr.hook = func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if r.Method != http.MethodPatch || patches.Add(1) != 2 {
			return false
		}
		dropMidChunk(t, w, r, next)
		return true
	}
	c := tr.client(t, registryclient.Options{ChunkSize: 64 << 10}, "cvi/drop")
	data := randomBytes(200 << 10)
	d := upload(t, c, "cvi/drop", data)
	if got := getBlob(t, tr, "cvi/drop", d); !bytes.Equal(got, data) {
		t.Fatal("blob differs after the drop")
	}
	if n := patches.Load(); n < 5 {
		t.Errorf("%d PATCH requests; the dropped chunk was not resent", n)
	}
}

// dropMidChunk passes the first half of the chunk to the registry, then
// closes the client's connection without an answer.
func dropMidChunk(t *testing.T, w http.ResponseWriter, r *http.Request, next http.Handler) {
	body, _ := io.ReadAll(r.Body)
	half := body[:len(body)/2]
	var start, end int64
	if _, err := fmt.Sscanf(r.Header.Get("Content-Range"), "%d-%d", &start, &end); err != nil {
		t.Errorf("Content-Range %q: %v", r.Header.Get("Content-Range"), err)
	}
	part := r.Clone(r.Context())
	part.Body = io.NopCloser(bytes.NewReader(half))
	part.ContentLength = int64(len(half))
	part.Header.Set("Content-Range", fmt.Sprintf("%d-%d", start, start+int64(len(half))-1))
	next.ServeHTTP(httptest.NewRecorder(), part)
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

func TestMountAndManifests(t *testing.T) {
	tr := startRegistry(t)
	ctx := context.Background()
	c := tr.client(t, registryclient.Options{}, "cvi/src", "vi/ns/dst")
	layer := upload(t, c, "cvi/src", randomBytes(4096))
	cfg, err := c.PutBlob(ctx, "cvi/src", []byte(`{"config":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	man := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":13},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":4096}]}`, cfg, layer))
	m := &registryclient.Manifest{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: digest.FromBytes(man), Bytes: man}
	if err := c.PutManifest(ctx, "cvi/src", "latest", m); err != nil {
		t.Fatal(err)
	}
	for _, d := range []digest.Digest{cfg, layer} {
		if err := c.MountBlob(ctx, "vi/ns/dst", "cvi/src", d); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.PutManifest(ctx, "vi/ns/dst", "v1", m); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetManifest(ctx, "vi/ns/dst", "v1")
	if err != nil || got.Digest != m.Digest {
		t.Fatalf("GetManifest: %v %+v", err, got)
	}
	err = c.MountBlob(ctx, "vi/ns/dst", "cvi/src", digest.FromString("absent"))
	if !errors.Is(err, registryclient.ErrMountRefused) {
		t.Errorf("mount of a missing blob: %v, want ErrMountRefused", err)
	}
	if _, err := c.GetManifest(ctx, "cvi/src", "missing"); !errors.Is(err, registryclient.ErrNotFound) {
		t.Errorf("missing manifest: %v, want ErrNotFound", err)
	}
}

// TestWaitGivesUpWithContext: a registry that stays read-only ends the
// wait when the context does, with ErrUnavailable.
func TestWaitGivesUpWithContext(t *testing.T) {
	tr := startRegistry(t)
	hold, err := tr.srv.Gate().Enter(context.Background(), "maintenance", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Release()
	c := tr.client(t, registryclient.Options{}, "cvi/stuck")
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	_, err = c.StartUpload(ctx, "cvi/stuck")
	if !errors.Is(err, registryclient.ErrUnavailable) || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("StartUpload while read-only: %v", err)
	}
}

// TestCancelAfterAChunkCutShort: the client gives up in the middle of a
// chunk the registry has taken in part, so the session's Location is behind
// what the registry holds; Cancel still deletes the session.
func TestCancelAfterAChunkCutShort(t *testing.T) {
	tr := startRegistry(t)
	var session atomic.Value // the upload's path
	ctx, giveUp := context.WithCancel(context.Background())
	defer giveUp()
	tr.hook = func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if r.Method != http.MethodPatch {
			return false
		}
		session.Store(r.URL.Path)
		body, _ := io.ReadAll(io.LimitReader(r.Body, 32<<10))
		part := r.Clone(r.Context())
		part.Body = io.NopCloser(bytes.NewReader(body))
		part.ContentLength = int64(len(body))
		part.Header.Set("Content-Length", fmt.Sprint(len(body)))
		part.Header.Set("Content-Range", fmt.Sprintf("0-%d", len(body)-1))
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, part)
		if rec.Code != http.StatusAccepted {
			t.Errorf("the first half of the chunk: %d %s", rec.Code, rec.Body)
		}
		giveUp()                           // the registry holds 32 KiB; the client goes
		_, _ = io.Copy(io.Discard, r.Body) // ends when the client closes
		return true
	}
	c := tr.client(t, registryclient.Options{ChunkSize: 64 << 10}, "cvi/cut")
	up, err := c.StartUpload(context.Background(), "cvi/cut")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Copy(ctx, bytes.NewReader(randomBytes(200<<10))); err == nil {
		t.Fatal("Copy went on after the context ended")
	}
	up.Cancel()
	resp, err := http.Get(tr.http.URL + session.Load().(string))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET of the upload session after Cancel: %s, want 404 (deleted)", resp.Status)
	}
}
