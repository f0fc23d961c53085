package node

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ns is the release namespace README.md installs DVCR into.
const ns = "d8-virtualization"

var repoRoot = func() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}()

func TestMain(m *testing.M) {
	os.Exit(runWithCluster(m))
}

// runWithCluster brings the cluster up (make cluster's script), runs the
// tests and takes it down again. A cluster that does not come up is a failure
// of the whole package, never a skip.
func runWithCluster(m *testing.M) int {
	up := exec.Command(filepath.Join(repoRoot, "hack", "cluster", "up"))
	up.Stdout, up.Stderr = os.Stdout, os.Stderr
	start := time.Now()
	if err := up.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "node: hack/cluster/up: %v\n", err)
		dumpLogs()
		teardown()
		return 1
	}
	fmt.Printf("node: cluster up and DVCR Ready in %s\n", time.Since(start).Round(time.Second))
	code := m.Run()
	if code != 0 {
		dumpLogs()
	}
	teardown()
	return code
}

func teardown() {
	if os.Getenv("DVCR_CLUSTER_KEEP") == "1" {
		fmt.Println("node: DVCR_CLUSTER_KEEP=1: the cluster stays; make cluster-down removes it")
		return
	}
	down := exec.Command(filepath.Join(repoRoot, "hack", "cluster", "down"))
	down.Stdout, down.Stderr = os.Stdout, os.Stderr
	if err := down.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "node: hack/cluster/down: %v\n", err)
	}
}

// dumpLogs prints the ends of the components' logs and the pods' state, so
// that a red CI run says why.
func dumpLogs() {
	state := filepath.Join(repoRoot, "_out", "cluster")
	logs, _ := filepath.Glob(filepath.Join(state, "logs", "*.log"))
	for _, l := range logs {
		out, _ := exec.Command("tail", "-n", "25", l).CombinedOutput()
		fmt.Fprintf(os.Stderr, "==> %s <==\n%s\n", l, out)
	}
	for _, args := range [][]string{
		{"kubectl", "get", "pods", "-A", "-o", "wide"},
		{"kubectl", "-n", ns, "describe", "pod"},
		{"kubectl", "-n", ns, "logs", "deploy/dvcr", "--tail=50"},
		{"kubectl", "get", "events", "-A", "--sort-by=.lastTimestamp"},
	} {
		out, _ := clusterCommand(context.Background(), args...).CombinedOutput()
		fmt.Fprintf(os.Stderr, "==> %s <==\n%s\n", strings.Join(args, " "), out)
	}
}

// clusterCommand is hack/cluster/run ARGS..., from the repository root.
func clusterCommand(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(repoRoot, "hack", "cluster", "run"), args...)
	cmd.Dir = repoRoot
	// A command that leaves a child holding its output does not hang the test.
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// run runs hack/cluster/run ARGS... and returns its standard output; a
// non-zero exit fails the test with both outputs.
func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := tryRun(t, args...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// tryRun is run that returns the error (and stdout plus stderr) instead.
func tryRun(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := clusterCommand(ctx, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

// kubectl runs kubectl in the cluster.
func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	return run(t, append([]string{"kubectl"}, args...)...)
}

// exec runs a command in the DVCR container the way the user documentation
// does: kubectl -n d8-virtualization exec deploy/dvcr -- ARGS...
func dvcrExec(t *testing.T, args ...string) string {
	t.Helper()
	return kubectl(t, append([]string{"-n", ns, "exec", "deploy/dvcr", "--"}, args...)...)
}

// eventually retries check every second until it returns nil or the
// timeout passes, then fails with the last error.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %v", what, timeout, err)
		}
		time.Sleep(time.Second)
	}
}
