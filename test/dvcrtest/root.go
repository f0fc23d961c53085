package dvcrtest

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// modulePath identifies the repository's root go.mod. Nested modules such as
// test/tools have go.mod files of their own, so finding any go.mod is not
// enough.
const modulePath = "github.com/dvcr/dvcr"

// FindRepoRoot walks up from the working directory (the package directory
// under `go test`) to the directory whose go.mod declares modulePath.
func FindRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if moduleOf(filepath.Join(dir, "go.mod")) == modulePath {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of module %s above the working directory", modulePath)
		}
		dir = parent
	}
}

// RepoRoot is FindRepoRoot that fails the test.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := FindRepoRoot()
	if err != nil {
		t.Fatalf("dvcrtest: %v", err)
	}
	return dir
}

// moduleOf returns the module path declared by a go.mod file, or "" when the
// file is missing or has no module line.
func moduleOf(gomod string) string {
	f, err := os.Open(gomod)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) >= 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`)
		}
	}
	return ""
}
