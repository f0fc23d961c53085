// Template tests of the alerting rules on the storage volume's space.

package chart

import (
	"fmt"
	"strings"
	"testing"
)

// TestPrometheusRule: off by default; on, it alerts at 85 % used
// (warning) and 95 % (critical) of the volume, from the metrics dvcr serve
// exports, or at the thresholds given.
func TestPrometheusRule(t *testing.T) {
	tests := []struct {
		name              string
		args              []string
		warning, critical string // "" = no rule rendered
	}{
		{name: "off by default"},
		{name: "on", args: []string{"--set", "monitoring.prometheusRule.enabled=true"}, warning: "85", critical: "95"},
		{name: "own thresholds", args: []string{"--set", "monitoring.prometheusRule.enabled=true",
			"--set", "monitoring.prometheusRule.warningPercent=70", "--set", "monitoring.prometheusRule.criticalPercent=90"},
			warning: "70", critical: "90"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := render(t, tt.args...)
			if tt.warning == "" {
				if r.PrometheusRule != nil {
					t.Fatalf("PrometheusRule rendered: %v", r.PrometheusRule)
				}
				return
			}
			rules := ruleList(t, r.PrometheusRule)
			want := map[string][2]string{"DVCRStorageAlmostFull": {"warning", tt.warning}, "DVCRStorageFull": {"critical", tt.critical}}
			for _, rule := range rules {
				name := fmt.Sprint(rule["alert"])
				w, ok := want[name]
				if !ok {
					t.Errorf("unexpected rule %s", name)
					continue
				}
				delete(want, name)
				expr := fmt.Sprint(rule["expr"])
				sel := `{namespace="` + namespace + `"}`
				if !strings.Contains(expr, "dvcr_storage_free_bytes"+sel) || !strings.Contains(expr, "dvcr_storage_size_bytes"+sel) ||
					!strings.HasSuffix(expr, "* 100 > "+w[1]) {
					t.Errorf("%s: expr %q, want the used share of the volume above %s %%", name, expr, w[1])
				}
				labels, _ := rule["labels"].(map[string]any)
				if labels["severity"] != w[0] || rule["for"] != "10m" {
					t.Errorf("%s: labels %v, for %v", name, labels, rule["for"])
				}
			}
			if len(want) > 0 {
				t.Errorf("rules missing: %v", want)
			}
		})
	}
}

// ruleList is the rules of the PrometheusRule's only group.
func ruleList(t *testing.T, pr map[string]any) []map[string]any {
	t.Helper()
	spec, _ := pr["spec"].(map[string]any)
	groups, _ := spec["groups"].([]any)
	if len(groups) != 1 {
		t.Fatalf("PrometheusRule groups: %v", spec)
	}
	g, _ := groups[0].(map[string]any)
	var out []map[string]any
	for _, r := range g["rules"].([]any) {
		out = append(out, r.(map[string]any))
	}
	return out
}
