package node

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

var measurements = struct {
	sync.Mutex
	values map[string]float64
}{values: map[string]float64{}}

// measure records a number for docs/cluster.md in _out/node-measurements.json
// (the numbers of the last run), and logs it.
func measure(t *testing.T, name string, value float64) {
	t.Helper()
	t.Logf("measure: %s = %.3f", name, value)
	measurements.Lock()
	defer measurements.Unlock()
	measurements.values[name] = value
	data, err := json.MarshalIndent(measurements.values, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repoRoot, "_out", "node-measurements.json"), data, 0o644); err != nil {
		t.Errorf("recording %s: %v", name, err)
	}
}
