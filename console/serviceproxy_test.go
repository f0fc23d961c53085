package console

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"k8s.io/client-go/rest"
)

// TestServiceProxy: a registry request for a Service's in-cluster name goes
// to the API server's proxy path for that Service, with the operator's
// credentials; other hosts are refused.
func TestServiceProxy(t *testing.T) {
	var got *http.Request
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		w.WriteHeader(http.StatusOK)
	}))
	defer api.Close()
	proxy, err := newServiceProxy(&rest.Config{Host: api.URL, BearerToken: "operator"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		url, path, query string
		ok               bool
	}{
		{"https://dvcr.d8-virtualization.svc/v2/", "/api/v1/namespaces/d8-virtualization/services/http:dvcr:http/proxy/v2/", "", true},
		{"https://dvcr.ns.svc.cluster.local/v2/cvi/x/blobs/sha256:ab?n=1", "/api/v1/namespaces/ns/services/http:dvcr:http/proxy/v2/cvi/x/blobs/sha256:ab", "n=1", true},
		{"https://registry.example.com/v2/", "", "", false},
		{"https://dvcr.svc/v2/", "", "", false},
	} {
		t.Run(tt.url, func(t *testing.T) {
			got = nil
			req, _ := http.NewRequest(http.MethodGet, tt.url, nil)
			resp, err := proxy.RoundTrip(req)
			if !tt.ok {
				if err == nil {
					t.Fatalf("RoundTrip(%s) went through", tt.url)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got == nil {
				t.Fatalf("the API server saw no request (%s from %s)", resp.Status, resp.Request.URL)
			}
			if got.URL.Path != tt.path || got.URL.RawQuery != tt.query {
				t.Errorf("proxied to %s?%s, want %s?%s", got.URL.Path, got.URL.RawQuery, tt.path, tt.query)
			}
			if got.Header.Get("Authorization") != "Bearer operator" {
				t.Errorf("Authorization %q: the operator's credentials are not used", got.Header.Get("Authorization"))
			}
		})
	}
}
