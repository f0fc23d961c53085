package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dvcr/dvcr/test/dvcrtest"
)

// TestCleanerRefusesWithoutTerminal: gc run and delete ask for
// confirmation, and with no terminal to ask on they refuse and change nothing.
func TestCleanerRefusesWithoutTerminal(t *testing.T) {
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{})
	disk := dvcrtest.MakeDisk(t, "a", "raw", "1M", 4096)
	dvcrtest.Push(t, srv, disk, "cvi/keep", "latest")
	for _, args := range [][]string{{"gc", "run"}, {"delete", "cvi", "keep"}} {
		res := dvcrtest.Cleaner(t, append([]string{"--config", srv.ConfigPath}, args...)...)
		if res.ExitCode == 0 || !strings.Contains(res.Stderr, "--yes") {
			t.Fatalf("dvcr-cleaner %v without a terminal: exit %d\n%s", args, res.ExitCode, res.Stderr)
		}
	}
	assertSameDisk(t, disk, dvcrtest.Pull(t, srv, "cvi/keep", "latest"))
}

// TestDelete removes one repository through the running server, which drops
// its caches, and then offline on storage: the deleted images no longer
// pull, the others still do.
func TestDelete(t *testing.T) {
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{DVCR: "  gc:\n    gracePeriod: 0s\n"})
	disk := dvcrtest.MakeDisk(t, "a", "qcow2", "8M", 64*1024)
	for _, repo := range []string{"vi/default/gone", "vi/default/kept", "vd/prod/offline"} {
		dvcrtest.Push(t, srv, disk, repo, "latest")
	}
	res := dvcrtest.MustCleaner(t, "--config", srv.ConfigPath, "delete", "vi", "gone", "--yes", "-o", "json")
	if !strings.Contains(res.Stdout, `"via": "server"`) {
		t.Fatalf("delete through the running server: %s", res.Stdout)
	}
	if _, err := dvcrtest.SkopeoErr(t, "inspect", "--tls-verify=false", srv.Ref("vi/default/gone", "latest")); err == nil {
		t.Fatal("deleted repository still pulls")
	}
	assertSameDisk(t, disk, dvcrtest.Pull(t, srv, "vi/default/kept", "latest"))
	if res := dvcrtest.Cleaner(t, "--config", srv.ConfigPath, "delete", "vi", "never-was", "--yes"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "not found") {
		t.Fatalf("delete of a missing repository: exit %d %s", res.ExitCode, res.Stderr)
	}

	srv.Stop(t)
	res = dvcrtest.MustCleaner(t, "--config", srv.ConfigPath, "delete", "vd", "offline", "-n", "prod", "--yes", "-o", "json")
	if !strings.Contains(res.Stdout, `"via": "storage"`) {
		t.Fatalf("delete with no server running: %s", res.Stdout)
	}
	restarted := dvcrtest.StartServer(t, dvcrtest.ServerOptions{DataDir: srv.DataDir})
	if _, err := dvcrtest.SkopeoErr(t, "inspect", "--tls-verify=false", restarted.Ref("vd/prod/offline", "latest")); err == nil {
		t.Fatal("repository deleted offline still pulls")
	}
	assertSameDisk(t, disk, dvcrtest.Pull(t, restarted, "vi/default/kept", "latest"))
}

// TestGCStatusSurvivesRestart: the records live in storage.
func TestGCStatusSurvivesRestart(t *testing.T) {
	e := newGCEnv(t, noGrace)
	if rec, out := e.run(t); !rec.Succeeded() {
		t.Fatalf("gc run: %+v\n%s", rec, out.Stderr)
	}
	e.srv.Stop(t)
	restarted := dvcrtest.StartServer(t, dvcrtest.ServerOptions{DataDir: e.srv.DataDir, Env: []string{"KUBECONFIG=" + e.kubeconfig}})
	st := dvcrtest.MustCleaner(t, "--config", restarted.ConfigPath, "gc", "status")
	if !strings.Contains(st.Stdout, "success") {
		t.Fatalf("gc status after restart:\n%s", st.Stdout)
	}
}

// TestOfflineRefusedBehindRunningRegistry: when the admin socket does not
// answer but a registry serves http.addr, offline mode refuses to touch
// storage.
func TestOfflineRefusedBehindRunningRegistry(t *testing.T) {
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{})
	disk := dvcrtest.MakeDisk(t, "a", "raw", "1M", 4096)
	dvcrtest.Push(t, srv, disk, "cvi/keep", "latest")
	data, err := os.ReadFile(srv.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(data), "127.0.0.1:0", srv.Addr, 1)
	cfg = strings.Replace(cfg, srv.AdminSock, filepath.Join(t.TempDir(), "elsewhere.sock"), 1)
	path := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"delete", "cvi", "keep", "--yes"}, {"gc", "run", "--yes"}} {
		res := dvcrtest.Cleaner(t, append([]string{"--config", path}, args...)...)
		if res.ExitCode == 0 || !strings.Contains(res.Stderr, "refusing to change storage behind a running registry") {
			t.Fatalf("dvcr-cleaner %v: exit %d\n%s%s", args, res.ExitCode, res.Stdout, res.Stderr)
		}
	}
	assertSameDisk(t, disk, dvcrtest.Pull(t, srv, "cvi/keep", "latest"))
}

// TestGCRunPromptsAtTerminal: at a real terminal (a pty from script(1)),
// gc run shows what it would delete and asks; "n" changes nothing, "y" runs.
func TestGCRunPromptsAtTerminal(t *testing.T) {
	e := newGCEnv(t, noGrace)
	disk := dvcrtest.MakeDisk(t, "orphan", "raw", "1M", 4096)
	dvcrtest.Push(t, e.srv, disk, "cvi/orphan", "latest")
	script := dvcrtest.Tool(t, "script", "apt-get install -y util-linux")
	cmdline := dvcrtest.Binary(t, "dvcr-cleaner") + " --config " + e.srv.ConfigPath + " --kubeconfig " + e.kubeconfig + " gc run"
	answer := func(reply string) (string, error) {
		cmd := exec.Command(script, "-qec", cmdline, "/dev/null")
		cmd.Stdin = strings.NewReader(reply + "\n")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := answer("n")
	if err == nil || !strings.Contains(out, "ClusterVirtualImage") || !strings.Contains(out, "orphan") || !strings.Contains(out, "Confirm? [y/N]") {
		t.Fatalf("answering n: %v\n%s", err, out)
	}
	assertSameDisk(t, disk, dvcrtest.Pull(t, e.srv, "cvi/orphan", "latest"))
	if out, err := answer("y"); err != nil || !strings.Contains(out, "Garbage collection succeeded") {
		t.Fatalf("answering y: %v\n%s", err, out)
	}
	if _, err := dvcrtest.SkopeoErr(t, "inspect", "--tls-verify=false", e.srv.Ref("cvi/orphan", "latest")); err == nil {
		t.Fatal("orphan still pulls after a confirmed run")
	}
}
