// Package dvcrtest is the tooling of DVCR's end-to-end tests: it finds the
// built binaries, starts a real `dvcr serve` on a free loopback port, makes
// real disk images with qemu-img and moves them with skopeo. A missing tool
// fails the test with the command that provides it; nothing is skipped.
package dvcrtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Binary is the path of bin/<name> in the repository; the test fails when it
// has not been built.
func Binary(t testing.TB, name string) string {
	t.Helper()
	path := filepath.Join(RepoRoot(t), "bin", name)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("dvcrtest: %s is missing: run `make build` (or `make test`, which builds it) first", path)
	}
	return path
}

// Tool is the path of an external command; the test fails when it is not
// installed.
func Tool(t testing.TB, name, installHint string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("dvcrtest: %s is not installed: %s", name, installHint)
	}
	return path
}
