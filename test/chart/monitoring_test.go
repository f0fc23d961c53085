// Template tests of the alerting rules on the storage volume's space and
// on storage verification.

package chart

import (
	"fmt"
	"strings"
	"testing"
)

// TestPrometheusRule: off by default; on, it alerts at 85 % used
// (warning) and 95 % (critical) of the volume, from the metrics dvcr serve
// exports, or at the thresholds given; on corrupt blobs found by the last
// verification; and, with a verification schedule, when none finished for
// verifyMaxAgeHours.
func TestPrometheusRule(t *testing.T) {
	on := []string{"--set", "monitoring.prometheusRule.enabled=true"}
	scheduled := append(on[:len(on):len(on)], "--set", "dvcr.verify.schedule=0 4 * * 6")
	tests := []struct {
		name              string
		args              []string
		warning, critical string // "" = no rule rendered
		staleSeconds      string // "" = no DVCRVerificationNotRunning
	}{
		{name: "off by default"},
		{name: "on", args: on, warning: "85", critical: "95"},
		{name: "own thresholds", args: append(on[:len(on):len(on)],
			"--set", "monitoring.prometheusRule.warningPercent=70", "--set", "monitoring.prometheusRule.criticalPercent=90"),
			warning: "70", critical: "90"},
		{name: "verify scheduled", args: scheduled, warning: "85", critical: "95", staleSeconds: "691200"},
		{name: "verify own max age", args: append(scheduled[:len(scheduled):len(scheduled)], "--set", "monitoring.prometheusRule.verifyMaxAgeHours=24"),
			warning: "85", critical: "95", staleSeconds: "86400"},
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
			checkStorageRules(t, rules, tt.warning, tt.critical)
			checkVerifyRules(t, rules, tt.staleSeconds)
			if len(rules) > 0 {
				t.Errorf("unexpected rules: %v", rules)
			}
		})
	}
}

// checkStorageRules checks and takes the rules on the volume's space.
func checkStorageRules(t *testing.T, rules map[string]map[string]any, warning, critical string) {
	t.Helper()
	sel := `{namespace="` + namespace + `"}`
	for name, w := range map[string][2]string{"DVCRStorageAlmostFull": {"warning", warning}, "DVCRStorageFull": {"critical", critical}} {
		rule := takeRule(t, rules, name)
		if rule == nil {
			continue
		}
		expr := fmt.Sprint(rule["expr"])
		if !strings.Contains(expr, "dvcr_storage_free_bytes"+sel) || !strings.Contains(expr, "dvcr_storage_size_bytes"+sel) ||
			!strings.HasSuffix(expr, "* 100 > "+w[1]) {
			t.Errorf("%s: expr %q, want the used share of the volume above %s %%", name, expr, w[1])
		}
		labels, _ := rule["labels"].(map[string]any)
		if labels["severity"] != w[0] || rule["for"] != "10m" {
			t.Errorf("%s: labels %v, for %v", name, labels, rule["for"])
		}
	}
}

// checkVerifyRules checks and takes the rules on storage verification:
// one alert per release (every replica exports the same results).
func checkVerifyRules(t *testing.T, rules map[string]map[string]any, staleSeconds string) {
	t.Helper()
	sel := `{namespace="` + namespace + `"}`
	want := map[string][2]string{
		"DVCRCorruptBlobs": {"critical", "max by (namespace) (dvcr_verify_corrupt_blobs" + sel + ") > 0"},
	}
	if staleSeconds != "" {
		want["DVCRVerificationNotRunning"] = [2]string{"warning",
			"time() - max by (namespace) (dvcr_verify_last_run_timestamp_seconds" + sel + " > 0) > " + staleSeconds}
	} else if _, ok := rules["DVCRVerificationNotRunning"]; ok {
		t.Errorf("DVCRVerificationNotRunning rendered without a verification schedule")
		delete(rules, "DVCRVerificationNotRunning")
	}
	for name, w := range want {
		rule := takeRule(t, rules, name)
		if rule == nil {
			continue
		}
		labels, _ := rule["labels"].(map[string]any)
		if expr := fmt.Sprint(rule["expr"]); expr != w[1] || labels["severity"] != w[0] {
			t.Errorf("%s: expr %q, severity %v; want %q, %s", name, expr, labels["severity"], w[1], w[0])
		}
		ann, _ := rule["annotations"].(map[string]any)
		if desc := fmt.Sprint(ann["description"]); !strings.Contains(desc, "dvcr-cleaner verify status") {
			t.Errorf("%s: the description does not say where the results are: %q", name, desc)
		}
	}
}

// takeRule removes the rule alerting name from rules and returns it.
func takeRule(t *testing.T, rules map[string]map[string]any, name string) map[string]any {
	t.Helper()
	rule, ok := rules[name]
	if !ok {
		t.Errorf("rule %s missing", name)
		return nil
	}
	delete(rules, name)
	return rule
}

// ruleList is the rules of the PrometheusRule's groups by alert name.
func ruleList(t *testing.T, pr map[string]any) map[string]map[string]any {
	t.Helper()
	spec, _ := pr["spec"].(map[string]any)
	groups, _ := spec["groups"].([]any)
	if len(groups) != 2 {
		t.Fatalf("PrometheusRule groups (want dvcr-storage and dvcr-verify): %v", spec)
	}
	out := map[string]map[string]any{}
	for _, g := range groups {
		rules, _ := g.(map[string]any)["rules"].([]any)
		for _, r := range rules {
			rule := r.(map[string]any)
			out[fmt.Sprint(rule["alert"])] = rule
		}
	}
	return out
}
