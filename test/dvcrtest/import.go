package dvcrtest

import (
	"bytes"
	"testing"

	"github.com/dvcr/dvcr/importer"
)

// ImportRun is one `dvcr import -o json` run.
type ImportRun = TransferRun[importer.Result]

// Import runs `bin/dvcr import -o json SOURCE REPO` against the server,
// with extra flags.
func Import(t testing.TB, s *Server, source, repo string, flags ...string) ImportRun {
	t.Helper()
	return ImportWith(t, s, nil, source, repo, flags...)
}

// ImportWith is Import with a standard input (for source "-").
func ImportWith(t testing.TB, s *Server, stdin *bytes.Reader, source, repo string, flags ...string) ImportRun {
	t.Helper()
	args := append([]string{"import", "--registry", s.Addr, "-o", "json"}, flags...)
	return runTransfer[importer.Result](t, stdin, "repository", append(args, source, repo)...)
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
