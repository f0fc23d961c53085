package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestNode walks the user documentation and README.md on the running node,
// in order: each step builds on what the steps before it left in the cluster
// (one cluster for the package: the machine has two cores).
func TestNode(t *testing.T) {
	steps := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"PodAsTheChartSays", testPodAsTheChartSays},
		{"ImageFromHTTP", testImageFromHTTP},
		{"UploadWithCurl", testUploadWithCurl},
		{"VirtualImageByObjectRef", testVirtualImageByObjectRef},
		{"VerifyThroughKubectlExec", testVerifyThroughKubectlExec},
		{"GCThroughKubectlExec", testGCThroughKubectlExec},
		{"PodDeletedKeepsImages", testPodDeletedKeepsImages},
		{"UpgradeWithSchedule", testUpgradeWithSchedule},
		{"ReplicasOnS3", testReplicasOnS3},
		{"BadInput", testBadInput},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.fn) {
			t.Fatalf("step %s failed; the steps after it depend on it", s.name)
		}
	}
}

// dvcrPod is the name of the Ready DVCR pod.
func dvcrPod(t *testing.T) string {
	t.Helper()
	kubectl(t, "-n", ns, "wait", "--for=condition=Ready", "pod", "-l", "app.kubernetes.io/name=dvcr", "--timeout=180s")
	return strings.TrimSpace(kubectl(t, "-n", ns, "get", "pod", "-l", "app.kubernetes.io/name=dvcr",
		"--field-selector=status.phase=Running", "-o", "jsonpath={.items[0].metadata.name}"))
}

// containerPID is the host PID of the dvcr container's process, from the
// container runtime.
func containerPID(t *testing.T, pod string) string {
	t.Helper()
	id := kubectl(t, "-n", ns, "get", "pod", pod, "-o", "jsonpath={.status.containerStatuses[0].containerID}")
	id = strings.TrimPrefix(id, "containerd://")
	return strings.TrimSpace(run(t, "crictl", "--runtime-endpoint", "unix:///run/containerd/containerd.sock",
		"inspect", "-o", "go-template", "--template", "{{.info.pid}}", id))
}

func testPodAsTheChartSays(t *testing.T) {
	pod := dvcrPod(t)
	pid := containerPID(t, pod)
	status, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^Uid:\s+64535\s+64535\s+64535\s+64535$`).Match(status) {
		t.Errorf("the dvcr process does not run as 64535:\n%s", status)
	}
	if !regexp.MustCompile(`(?m)^Gid:\s+64535\s`).Match(status) {
		t.Errorf("the dvcr process does not run with group 64535:\n%s", status)
	}
	if !regexp.MustCompile(`(?m)^Groups:.*\b64535\b`).Match(status) {
		t.Errorf("fsGroup 64535 is not among the process's groups:\n%s", status)
	}
	mounts, err := os.ReadFile(filepath.Join("/proc", pid, "mountinfo"))
	if err != nil {
		t.Fatal(err)
	}
	if root := mountOptions(string(mounts), "/"); !strings.HasPrefix(root, "ro") {
		t.Errorf("the root file system is mounted %q, want read-only", root)
	}
	if data := mountOptions(string(mounts), "/var/lib/registry"); !strings.HasPrefix(data, "rw") {
		t.Errorf("the data volume is mounted %q, want read-write", data)
	}
	restarts := kubectl(t, "-n", ns, "get", "pod", pod, "-o", "jsonpath={.status.containerStatuses[0].restartCount}")
	if restarts != "0" {
		t.Errorf("the pod restarted %s times", restarts)
	}
}

// mountOptions is the per-mount options of the mount at point in a mountinfo.
func mountOptions(mountinfo, point string) string {
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(line)
		if len(f) > 5 && f[4] == point {
			return f[5]
		}
	}
	return ""
}

// watch runs kubectl get ARGS -w until stop is called, and returns its lines.
func watch(t *testing.T, args ...string) (stop func() []string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out strings.Builder
	var mu sync.Mutex
	cmd := clusterCommand(ctx, append([]string{"kubectl", "get"}, append(args, "-w")...)...)
	cmd.Stdout = writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) })
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return func() []string {
		cancel()
		_ = cmd.Wait()
		mu.Lock()
		defer mu.Unlock()
		return strings.Split(strings.TrimSpace(out.String()), "\n")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// apply applies a manifest with kubectl.
func apply(t *testing.T, manifest string) {
	t.Helper()
	cmd := clusterCommand(context.Background(), "kubectl", "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply: %v\n%s\n%s", err, out, manifest)
	}
}

// waitPhase waits until the resource's status.phase is want (resource is
// kubectl get's arguments, such as "-n project vi/copy"); Failed ends the
// wait at once.
func waitPhase(t *testing.T, resource, want string, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, resource+" "+want, func() error {
		get := append([]string{"kubectl", "get"}, strings.Fields(resource)...)
		phase, err := tryRun(t, append(get, "-o", "jsonpath={.status.phase}")...)
		if err != nil {
			return fmt.Errorf("%v: %s", err, phase)
		}
		if phase == "Failed" && want != "Failed" {
			yaml, _ := tryRun(t, append(get, "-o", "yaml")...)
			t.Fatalf("%s is Failed:\n%s", resource, yaml)
		}
		if phase != want {
			return fmt.Errorf("phase %q", phase)
		}
		return nil
	})
}

// podMemory is the dvcr process's resident set and its peak so far, in bytes.
func podMemory(t *testing.T, pod string) (rss, peak int64) {
	t.Helper()
	status, err := os.ReadFile(filepath.Join("/proc", containerPID(t, pod), "status"))
	if err != nil {
		t.Fatal(err)
	}
	read := func(key string) int64 {
		m := regexp.MustCompile(`(?m)^` + key + `:\s+(\d+) kB$`).FindSubmatch(status)
		if m == nil {
			t.Fatalf("no %s in /proc/PID/status", key)
		}
		var kb int64
		fmt.Sscan(string(m[1]), &kb)
		return kb << 10
	}
	return read("VmRSS"), read("VmHWM")
}
