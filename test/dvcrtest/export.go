package dvcrtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/dvcr/dvcr/exporter"
)

// ExportRun is one `dvcr export -o json` run.
type ExportRun struct {
	Result   *exporter.Result // nil unless it succeeded
	Events   []exporter.Event
	Stderr   string
	ExitCode int
}

// ExportCommand is `bin/dvcr export --registry ADDR -o json FLAGS... REPO
// FILE` against registry (host:port), not started.
func ExportCommand(t testing.TB, ctx context.Context, registry, repo, file string, flags ...string) *exec.Cmd {
	t.Helper()
	args := append([]string{"export", "--registry", registry, "-o", "json"}, flags...)
	return exec.CommandContext(ctx, Binary(t, "dvcr"), append(args, repo, file)...)
}

// Export runs `dvcr export -o json REPO FILE` against registry (host:port).
func Export(t testing.TB, registry, repo, file string, flags ...string) ExportRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := ExportCommand(t, ctx, registry, repo, file, flags...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	run := ExportRun{Stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		run.ExitCode = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("dvcr export: %v\n%s", err, stderr.String())
	}
	run.Parse(t, stdout.String())
	return run
}

// Parse reads the NDJSON: events, then the result when it succeeded.
func (r *ExportRun) Parse(t testing.TB, out string) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.Contains(line, []byte(`"sha256"`)) {
			r.Result = &exporter.Result{}
			if err := json.Unmarshal(line, r.Result); err != nil {
				t.Fatalf("dvcr export result %q: %v", line, err)
			}
			continue
		}
		var e exporter.Event
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("dvcr export -o json printed %q: %v", line, err)
		}
		r.Events = append(r.Events, e)
	}
	if r.ExitCode == 0 && r.Result == nil {
		t.Fatalf("dvcr export exited 0 without a result:\n%s\n%s", out, r.Stderr)
	}
}

// MustExport is Export that fails the test unless the export succeeds.
func MustExport(t testing.TB, registry, repo, file string, flags ...string) *exporter.Result {
	t.Helper()
	run := Export(t, registry, repo, file, flags...)
	if run.ExitCode != 0 {
		t.Fatalf("dvcr export %s %s: exit %d\n%s", repo, file, run.ExitCode, run.Stderr)
	}
	return run.Result
}
