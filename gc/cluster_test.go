package gc

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/dvcr/dvcr/api/v1alpha2"
	"github.com/dvcr/dvcr/naming"
)

// TestClusterListerPagesAndSurvivesExpiry: the VirtualDisks come in pages
// of PageSize; when the continue token expires half way (410 Gone) the
// list is still whole, each disk once with its phase.
func TestClusterListerPagesAndSurvivesExpiry(t *testing.T) {
	const disks, pageSize = 5, 2
	api := &pagingAPI{total: disks, expireAt: pageSize}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	l, err := NewClusterLister(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	l.PageSize = pageSize
	inv, err := l.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !api.expired || len(api.limits) < 3 || api.limits[0] != "2" {
		t.Fatalf("requests with limits %q, expired %v: want pages of %d and an expiry", api.limits, api.expired, pageSize)
	}
	if len(inv.Resources) != disks {
		t.Fatalf("listed %d disks, want %d: %+v", len(inv.Resources), disks, inv.Resources)
	}
	for i, r := range inv.Resources {
		if r.Kind != naming.KindVD || r.Name != fmt.Sprintf("vd-%d", i) || r.Namespace != "ns" || r.Phase != "Ready" {
			t.Errorf("resource %d: %+v", i, r)
		}
	}
}

// pagingAPI serves total VirtualDisks in pages (continue = the next
// index), expires the token expireAt once, and no images.
type pagingAPI struct {
	total, expireAt int

	mu      sync.Mutex
	expired bool
	limits  []string
}

func (a *pagingAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if !strings.HasSuffix(r.URL.Path, "/virtualdisks") {
		_ = json.NewEncoder(w).Encode(map[string]any{"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": map[string]any{}, "items": []any{}})
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	q := r.URL.Query()
	a.limits = append(a.limits, q.Get("limit"))
	from, _ := strconv.Atoi(q.Get("continue"))
	if from == a.expireAt && from > 0 && !a.expired {
		a.expired = true
		w.WriteHeader(http.StatusGone)
		_ = json.NewEncoder(w).Encode(map[string]any{"apiVersion": "v1", "kind": "Status", "status": "Failure", "reason": "Expired", "code": 410, "message": "continue token expired"})
		return
	}
	to := a.total
	if limit, _ := strconv.Atoi(q.Get("limit")); limit > 0 {
		to = min(from+limit, a.total)
	}
	items := []any{}
	for i := from; i < to; i++ {
		items = append(items, map[string]any{
			"apiVersion": v1alpha2.APIVersion, "kind": "VirtualDisk",
			"metadata": map[string]any{"namespace": "ns", "name": fmt.Sprintf("vd-%d", i)},
			"status":   map[string]any{"phase": "Ready"},
		})
	}
	meta := map[string]any{}
	if to < a.total {
		meta["continue"] = strconv.Itoa(to)
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"apiVersion": v1alpha2.APIVersion, "kind": "VirtualDiskList", "metadata": meta, "items": items})
}
