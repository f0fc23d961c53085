package dvcrtest

import (
	"context"
	"os/exec"
	"testing"

	"github.com/dvcr/dvcr/exporter"
)

// ExportRun is one `dvcr export -o json` run.
type ExportRun = TransferRun[exporter.Result]

// ExportCommand is `bin/dvcr export --registry ADDR -o json FLAGS... REPO
// FILE` against registry (host:port), not started.
func ExportCommand(t testing.TB, ctx context.Context, registry, repo, file string, flags ...string) *exec.Cmd {
	t.Helper()
	return exec.CommandContext(ctx, Binary(t, "dvcr"), exportArgs(registry, repo, file, flags)...)
}

func exportArgs(registry, repo, file string, flags []string) []string {
	args := append([]string{"export", "--registry", registry, "-o", "json"}, flags...)
	return append(args, repo, file)
}

// Export runs `dvcr export -o json REPO FILE` against registry (host:port).
func Export(t testing.TB, registry, repo, file string, flags ...string) ExportRun {
	t.Helper()
	return runTransfer[exporter.Result](t, nil, "sha256", exportArgs(registry, repo, file, flags)...)
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
