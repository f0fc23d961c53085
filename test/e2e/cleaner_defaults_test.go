package e2e

import (
	"context"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/dvcr/dvcr/test/dvcrtest"
)

// TestCleanerFindsMakeRun: what a newcomer does after `make run` — dvcr
// serve and dvcr-cleaner, both without --config, in one directory — works:
// the cleaner takes the same embedded defaults (./data) and says so,
// instead of failing on the pod's /etc/docker/registry/config.yml.
func TestCleanerFindsMakeRun(t *testing.T) {
	dir := t.TempDir()
	if l, err := net.Listen("tcp", "127.0.0.1:5000"); err != nil {
		t.Fatalf("make run's address 127.0.0.1:5000 is taken (another dvcr serve?): %v", err)
	} else {
		l.Close()
	}
	ctx, cancel := context.WithCancel(context.Background())
	serve := exec.CommandContext(ctx, dvcrtest.Binary(t, "dvcr"), "serve")
	serve.Dir = dir
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = serve.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://127.0.0.1:5000/v2/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dvcr serve without --config did not answer on 127.0.0.1:5000: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	disk := dvcrtest.MakeDiskFile(t, t.TempDir(), "disk", "qcow2", "16M", 1<<20)
	imp := exec.Command(dvcrtest.Binary(t, "dvcr"), "import", disk, "cvi/newcomer")
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("dvcr import: %v\n%s", err, out)
	}

	ls := exec.Command(dvcrtest.Binary(t, "dvcr-cleaner"), "ls", "cvi")
	ls.Dir = dir
	out, err := ls.Output()
	if err != nil {
		t.Fatalf("dvcr-cleaner ls cvi without --config next to make run's dvcr serve: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "newcomer") {
		t.Errorf("dvcr-cleaner ls cvi does not list the image pushed to make run's registry:\n%s", out)
	}
	var stderr strings.Builder
	status := exec.Command(dvcrtest.Binary(t, "dvcr-cleaner"), "gc", "status")
	status.Dir, status.Stderr = dir, &stderr
	if out, err := status.Output(); err != nil {
		t.Fatalf("dvcr-cleaner gc status: %v\n%s%s", err, out, stderr.String())
	}
	if !strings.Contains(stderr.String(), "embedded defaults") {
		t.Errorf("dvcr-cleaner does not say it used the embedded defaults: %q", stderr.String())
	}
}
