package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"

	"github.com/dvcr/dvcr/test/dvcrtest"
)

// chartDeployment renders the chart with its default values (bin/helm, as
// test/chart does) and returns the Deployment.
func chartDeployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	root := dvcrtest.RepoRoot(t)
	helm := filepath.Join(root, "bin", "helm")
	if _, err := os.Stat(helm); err != nil {
		t.Fatalf("%s is missing: run `bash hack/helm.sh` (or `make tools`) to build helm from the Go module proxy", helm)
	}
	home := t.TempDir()
	cmd := exec.CommandContext(t.Context(), helm, "template", "dvcr", filepath.Join(root, "charts", "dvcr"), "--namespace", "d8-virtualization")
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"KUBECONFIG="+filepath.Join(home, "no-kubeconfig"),
	)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	for _, doc := range strings.Split(string(out), "\n---") {
		var d appsv1.Deployment
		if err := yaml.Unmarshal([]byte(doc), &d); err != nil {
			continue // other kinds need not decode into a Deployment
		}
		if d.Kind == "Deployment" {
			return &d
		}
	}
	t.Fatalf("helm template rendered no Deployment")
	return nil
}

// TestMatchesChart checks that the image is what the chart runs by default:
// the reference it pulls, the command and arguments it gives, and the user
// it runs as.
func TestMatchesChart(t *testing.T) {
	res, _ := built(t)
	d := chartDeployment(t)
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%d containers in the Deployment, want 1", len(d.Spec.Template.Spec.Containers))
	}
	c := d.Spec.Template.Spec.Containers[0]
	cf, err := layoutImage(t, res, "amd64").ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if c.Image != res.reference.Name() {
		t.Errorf("the chart pulls %s, the image is named %s", c.Image, res.reference.Name())
	}
	if !slices.Equal(c.Command, cf.Config.Entrypoint) || !slices.Equal(c.Args, cf.Config.Cmd) {
		t.Errorf("chart command %q args %q, image entrypoint %q cmd %q", c.Command, c.Args, cf.Config.Entrypoint, cf.Config.Cmd)
	}
	psc := d.Spec.Template.Spec.SecurityContext
	if psc == nil || psc.RunAsUser == nil || psc.RunAsGroup == nil {
		t.Fatalf("the chart sets no runAsUser/runAsGroup")
	}
	if user := fmt.Sprintf("%d:%d", *psc.RunAsUser, *psc.RunAsGroup); user != cf.Config.User {
		t.Errorf("the chart runs as %s, the image as %s", user, cf.Config.User)
	}
}
