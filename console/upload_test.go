package console

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/dvcr/dvcr/api/v1alpha2"
	"github.com/dvcr/dvcr/naming"
)

// uploadConsole is a console whose API server (a fake: this tests the
// proxy's streaming, the real path is in test/e2e) holds one cluster image
// per entry of uploadURLs, name -> status.imageUploadURLs.inCluster.
func uploadConsole(t *testing.T, uploadURLs map[string]string) *httptest.Server {
	t.Helper()
	var objs []runtime.Object
	for name, u := range uploadURLs {
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "virtualization.deckhouse.io/v1alpha2", "kind": "ClusterVirtualImage",
			"metadata": map[string]any{"name": name},
			"spec":     map[string]any{"dataSource": map[string]any{"type": "Upload"}},
			"status":   map[string]any{"phase": "WaitForUserUpload"},
		}}
		if u != "" {
			_ = unstructured.SetNestedField(obj.Object, u, "status", "imageUploadURLs", "inCluster")
		}
		objs = append(objs, obj)
	}
	cvi := v1alpha2.Resources[naming.KindCVI]
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{cvi: "ClusterVirtualImageList"}, objs...)
	s := &Server{dynamic: dyn, uploads: &http.Client{Transport: uploadTransport()}, sessions: newSessions()}
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /api/upload/{kind}/{name}", s.upload)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestUploadStreams: the console forwards the body while the browser still
// sends it. The endpoint must see the first MiB before the client sends the
// rest; a proxy that buffered the body would never let that happen.
func TestUploadStreams(t *testing.T) {
	const piece = 1 << 20
	firstMiB := make(chan struct{})
	var received int64
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.CopyN(io.Discard, r.Body, piece); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		close(firstMiB)
		n, _ := io.Copy(io.Discard, r.Body)
		received = piece + n
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, "upload complete")
	}))
	defer endpoint.Close()
	console := uploadConsole(t, map[string]string{"disk": endpoint.URL + "/upload/secret-token"})

	pr, pw := io.Pipe()
	defer pw.CloseWithError(io.ErrUnexpectedEOF) // a failed test must not leave the proxy waiting
	req, _ := http.NewRequest(http.MethodPut, console.URL+"/api/upload/cvi/disk", pr)
	req.ContentLength = 3 * piece
	done := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
		}
		done <- resp
	}()
	chunk := make([]byte, piece)
	if _, err := pw.Write(chunk); err != nil {
		t.Fatal(err)
	}
	select {
	case <-firstMiB:
	case <-time.After(10 * time.Second):
		t.Fatal("the endpoint saw nothing of the upload while the client was still sending: the console buffers")
	}
	for range 2 {
		if _, err := pw.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	pw.Close()
	resp := <-done
	if resp == nil {
		return
	}
	defer resp.Body.Close()
	var res UploadResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d, %v", resp.StatusCode, err)
	}
	if res.Status != http.StatusAccepted || res.Message != "upload complete" || received != 3*piece || strings.Contains(res.Target, "secret-token") {
		t.Errorf("result %+v, endpoint received %d bytes", res, received)
	}
}

func TestUploadRefusals(t *testing.T) {
	console := uploadConsole(t, map[string]string{"waiting": "", "gone": "http://127.0.0.1:1/upload/secret-token"})
	tests := []struct {
		name     string
		path     string
		wantCode int
		wantText string
	}{
		{"no upload URL yet", "/api/upload/cvi/waiting", http.StatusConflict, "no upload URL"},
		{"unknown image", "/api/upload/cvi/missing", http.StatusNotFound, "not found"},
		{"unknown kind", "/api/upload/vd/x", http.StatusBadRequest, "unknown image kind"},
		{"project image without namespace", "/api/upload/vi/x", http.StatusBadRequest, "namespace"},
		{"endpoint unreachable, token not shown", "/api/upload/cvi/gone", http.StatusBadGateway, "upload/…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPut, console.URL+tt.path, strings.NewReader("data"))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantCode || !strings.Contains(string(body), tt.wantText) || strings.Contains(string(body), "secret-token") {
				t.Errorf("HTTP %d %s, want %d with %q and no token", resp.StatusCode, body, tt.wantCode, tt.wantText)
			}
		})
	}
}
