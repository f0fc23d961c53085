package envtest

import (
	"fmt"
	"os"
	"path/filepath"
)

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
