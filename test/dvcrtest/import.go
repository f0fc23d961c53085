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

	"github.com/dvcr/dvcr/importer"
)

// ImportRun is one `dvcr import -o json` run.
type ImportRun struct {
	Result   *importer.Result // nil unless it succeeded
	Events   []importer.Event
	Stderr   string
	ExitCode int
}

// Import runs `bin/dvcr import -o json SOURCE REPO` against the server,
// with extra flags.
func Import(t testing.TB, s *Server, source, repo string, flags ...string) ImportRun {
	t.Helper()
	return ImportWith(t, s, nil, source, repo, flags...)
}

// ImportWith is Import with a standard input (for source "-").
func ImportWith(t testing.TB, s *Server, stdin *bytes.Reader, source, repo string, flags ...string) ImportRun {
	t.Helper()
	bin := Binary(t, "dvcr")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := append([]string{"import", "--registry", s.Addr, "-o", "json"}, flags...)
	cmd := exec.CommandContext(ctx, bin, append(args, source, repo)...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	run := ImportRun{Stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		run.ExitCode = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("dvcr import: %v\n%s", err, stderr.String())
	}
	run.parse(t, stdout.String())
	return run
}

// parse reads the NDJSON: events, then the result when it succeeded.
func (r *ImportRun) parse(t testing.TB, out string) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.Contains(line, []byte(`"repository"`)) {
			r.Result = &importer.Result{}
			if err := json.Unmarshal(line, r.Result); err != nil {
				t.Fatalf("dvcr import result %q: %v", line, err)
			}
			continue
		}
		var e importer.Event
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("dvcr import -o json printed %q: %v", line, err)
		}
		r.Events = append(r.Events, e)
	}
	if r.ExitCode == 0 && r.Result == nil {
		t.Fatalf("dvcr import exited 0 without a result:\n%s\n%s", out, r.Stderr)
	}
}

// MustImport is Import that fails the test unless the import succeeds.
func MustImport(t testing.TB, s *Server, source, repo string, flags ...string) *importer.Result {
	t.Helper()
	run := Import(t, s, source, repo, flags...)
	if run.ExitCode != 0 {
		t.Fatalf("dvcr import %s %s: exit %d\n%s", source, repo, run.ExitCode, run.Stderr)
	}
	return run.Result
}
