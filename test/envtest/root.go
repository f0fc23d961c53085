package envtest

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// modulePath identifies the repository's root go.mod. Nested modules such as
// test/tools have go.mod files of their own, so finding any go.mod is not
// enough.
const modulePath = "github.com/dvcr/dvcr"

// repoRoot walks up from the working directory (the package directory under
// `go test`) to the directory whose go.mod declares modulePath.
func repoRoot() (string, error) {
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
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`)
		}
	}
	return ""
}

// checkBinaries reports what is missing from the bin/k8s directory. The
// VERSIONS stamp is written by hack/testbin.sh only after both builds
// succeeded, so requiring it also rejects a half-finished build.
func checkBinaries(dir string) error {
	for _, name := range []string{"kube-apiserver", "etcd", "VERSIONS"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("%s is missing: run `make testbin` (hack/testbin.sh) to build "+
				"kube-apiserver and etcd into %s", filepath.Join(dir, name), dir)
		}
	}
	return nil
}
