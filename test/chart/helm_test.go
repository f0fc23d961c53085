package chart

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/dvcr/dvcr/test/dvcrtest"
)

const (
	// release and namespace of every render: the names the documentation uses.
	release   = "dvcr"
	namespace = "d8-virtualization"
)

// repoRoot is the repository's root directory.
func repoRoot(t testing.TB) string { return dvcrtest.RepoRoot(t) }

func chartDir(t testing.TB) string {
	t.Helper()
	return filepath.Join(repoRoot(t), "charts", "dvcr")
}

// helmBin is <repo>/bin/helm. A missing binary fails the test: a chart test
// that skips proves nothing.
func helmBin(t testing.TB) string {
	t.Helper()
	path := filepath.Join(repoRoot(t), "bin", "helm")
	if fi, err := os.Stat(path); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		t.Fatalf("chart: %s is missing or not executable: run `bash hack/helm.sh` "+
			"(or `make tools`) to build helm from the Go module proxy", path)
	}
	return path
}

// helm runs bin/helm with args in an isolated HELM_* home and returns its
// combined output. kubeconfig is passed to commands that talk to a cluster;
// "" points KUBECONFIG at a file that does not exist, so that no render can
// reach a real cluster by accident.
func helm(t testing.TB, kubeconfig string, args ...string) (string, error) {
	t.Helper()
	bin := helmBin(t)
	home := t.TempDir()
	if kubeconfig == "" {
		kubeconfig = filepath.Join(home, "no-kubeconfig")
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"KUBECONFIG="+kubeconfig,
		"HELM_KUBECONTEXT=",
		"HELM_NAMESPACE=",
	)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("chart: running %s: %v", bin, err)
	}
	return out.String(), err
}

// template renders the chart as release "dvcr" in namespace
// "d8-virtualization" with extra helm arguments (--set ...) and returns the
// manifest; a failed render fails the test.
func template(t testing.TB, args ...string) string {
	t.Helper()
	out, err := helm(t, "", templateArgs(t, args...)...)
	if err != nil {
		t.Fatalf("helm template %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// templateErr renders like template and returns the failure, if any.
func templateErr(t testing.TB, args ...string) (string, error) {
	t.Helper()
	return helm(t, "", templateArgs(t, args...)...)
}

func templateArgs(t testing.TB, args ...string) []string {
	return append([]string{"template", release, chartDir(t), "--namespace", namespace}, args...)
}

// object is one rendered document: its kind and name, the raw YAML for strict
// decoding, and a generic form for fields no Go type is at hand for.
type object struct {
	Kind, Name string
	Raw        []byte
	Generic    map[string]any
}

// parseManifest splits a multi-document manifest into objects, skipping
// empty documents.
func parseManifest(t testing.TB, manifest string) []object {
	t.Helper()
	var objs []object
	for _, doc := range splitDocuments(manifest) {
		var generic map[string]any
		if err := yaml.Unmarshal([]byte(doc), &generic); err != nil {
			t.Fatalf("rendered document is not YAML: %v\n%s", err, doc)
		}
		if len(generic) == 0 {
			continue
		}
		meta, _ := generic["metadata"].(map[string]any)
		name, _ := meta["name"].(string)
		kind, _ := generic["kind"].(string)
		if kind == "" || name == "" {
			t.Fatalf("rendered document without kind or metadata.name:\n%s", doc)
		}
		objs = append(objs, object{Kind: kind, Name: name, Raw: []byte(doc), Generic: generic})
	}
	return objs
}

func splitDocuments(manifest string) []string {
	var docs []string
	var cur strings.Builder
	for _, line := range strings.SplitAfter(manifest, "\n") {
		if strings.TrimRight(line, "\r\n") == "---" {
			docs = append(docs, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteString(line)
	}
	return append(docs, cur.String())
}

// find returns the only object of kind; it fails the test when there is
// none or more than one.
func find(t testing.TB, objs []object, kind string) object {
	t.Helper()
	var found []object
	for _, o := range objs {
		if o.Kind == kind {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one %s in the render, got %d", kind, len(found))
	}
	return found[0]
}

func has(objs []object, kind string) bool {
	for _, o := range objs {
		if o.Kind == kind {
			return true
		}
	}
	return false
}

// decode strictly decodes the only object of kind into out: a field the API
// type does not know fails the test.
func decode[T any](t testing.TB, objs []object, kind string) *T {
	t.Helper()
	o := find(t, objs, kind)
	out := new(T)
	if err := yaml.UnmarshalStrict(o.Raw, out); err != nil {
		t.Fatalf("%s %s does not decode strictly into %T: %v\n%s", kind, o.Name, out, err, o.Raw)
	}
	return out
}

// yamlUnmarshal is sigs.k8s.io/yaml's Unmarshal (YAML to JSON to Go).
func yamlUnmarshal(data []byte, out any) error { return yaml.Unmarshal(data, out) }
