package storage

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestSpaceCollectorNames pins the metric names the contract (SPEC.md) and
// the chart's PrometheusRule use; the volume's size is exported once.
func TestSpaceCollectorNames(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(NewSpaceCollector(t.TempDir())); err != nil {
		t.Fatalf("register the space collector: %v", err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	got := map[string]bool{}
	for _, f := range families {
		got[f.GetName()] = true
	}
	for _, tc := range []struct {
		name     string
		exported bool
	}{
		{"dvcr_storage_free_bytes", true},
		{"dvcr_storage_size_bytes", true},
		{"dvcr_storage_total_bytes", false},
	} {
		t.Run(strings.TrimPrefix(tc.name, "dvcr_storage_"), func(t *testing.T) {
			if got[tc.name] != tc.exported {
				t.Errorf("%s exported = %v, want %v", tc.name, got[tc.name], tc.exported)
			}
		})
	}
}
