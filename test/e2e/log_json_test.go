package e2e

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dvcr/dvcr/test/dvcrtest"
)

// TestLogFormatJSONInEveryCommand: with --log-format json, what dvcr
// import, dvcr export and dvcr-cleaner write on stderr is JSON records with
// the shared attributes (component, phase, bytes, total); their reports stay
// on stdout.
func TestLogFormatJSONInEveryCommand(t *testing.T) {
	e := newGCEnv(t, noGrace)
	disk := dvcrtest.MakeDisk(t, "logged", "qcow2", "16M", 1<<20)
	dvcr := dvcrtest.Binary(t, "dvcr")
	out := filepath.Join(t.TempDir(), "out.qcow2")
	for _, c := range []struct {
		component string
		cmd       *exec.Cmd
		want      func(rec map[string]any) bool
	}{
		{"import", exec.Command(dvcr, "import", "--registry", e.srv.Addr, "--log-format", "json", disk.Path, "cvi/logged"),
			func(rec map[string]any) bool {
				return rec["msg"] == "progress" && rec["phase"] != nil && rec["total"] != nil
			}},
		{"export", exec.Command(dvcr, "export", "--registry", e.srv.Addr, "--log-format", "json", "cvi/logged", out),
			func(rec map[string]any) bool { return rec["msg"] == "progress" && rec["bytes"] != nil }},
		{"gc", exec.Command(dvcrtest.Binary(t, "dvcr-cleaner"), "--config", e.srv.ConfigPath, "--kubeconfig", e.kubeconfig,
			"--log-format", "json", "gc", "run", "--yes"),
			func(rec map[string]any) bool { return rec["msg"] != "" && rec["level"] == "INFO" }},
	} {
		t.Run(c.component, func(t *testing.T) {
			var stderr strings.Builder
			c.cmd.Stderr = &stderr
			stdout, err := c.cmd.Output()
			if err != nil {
				t.Fatalf("%v: %v\n%s%s", c.cmd.Args, err, stdout, stderr.String())
			}
			found := false
			for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("stderr line is not a JSON record: %q", line)
				}
				found = found || (rec["component"] == c.component && c.want(rec))
			}
			if !found {
				t.Errorf("no %s record on stderr:\n%s", c.component, stderr.String())
			}
			if len(strings.TrimSpace(string(stdout))) == 0 {
				t.Errorf("no report on stdout")
			}
		})
	}
}
