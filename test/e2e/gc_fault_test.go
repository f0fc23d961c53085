package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dvcr/dvcr/gc"
	"github.com/dvcr/dvcr/test/dvcrtest"
	"github.com/dvcr/dvcr/test/envtest"
)

// TestGCCrashAtEveryPhase stops dvcr serve at each fault point of a run
// (DVCR_GC_FAULT), restarts it on the same storage and checks: writable,
// every live image pulls whole, `gc status` shows the run as
// fail/interrupted, and the next run finishes the work (orphans gone, no
// trash, journal, marker or repository left half removed).
func TestGCCrashAtEveryPhase(t *testing.T) {
	cluster := envtest.Start(t)
	kubeconfig := cluster.Kubeconfig(t)
	shared := dvcrtest.MakeDisk(t, "shared", "raw", "1M", 64*1024)
	points := []struct{ fault, phase string }{
		{"readonly", "read-only window"},
		{"mark:2", "read-only window"},
		{"removal:2", "read-only window"},
		{"detach:2", "freeing space"},
		{"delete", "freeing space"},
		{"record", "writing the record"},
	}
	for _, p := range points {
		t.Run(p.fault, func(t *testing.T) {
			t.Parallel()
			ns := "crash-" + strings.NewReplacer(":", "-").Replace(p.fault)
			f := &faultRun{t: t, cluster: cluster, kubeconfig: kubeconfig, ns: ns, data: filepath.Join(t.TempDir(), "data")}
			f.populate(shared)
			f.crashAt(p.fault)
			srv := f.start(nil)
			dvcrtest.Push(t, srv, shared, "vi/"+ns+"/after-restart", "latest") // writable again
			f.checkLive(srv, shared)
			f.checkInterrupted(srv, p.phase)
			rec := f.gcRun(srv)
			if !rec.Succeeded() {
				t.Fatalf("the run after the restart failed: %+v", rec)
			}
			f.checkLive(srv, shared)
			f.checkFinished(srv)
		})
	}
}

// faultRun is one crash scenario on its own storage and namespace.
type faultRun struct {
	t          *testing.T
	cluster    *envtest.Cluster
	kubeconfig string
	ns, data   string
	orphans    []string
}

func (f *faultRun) start(env []string) *dvcrtest.Server {
	return dvcrtest.StartServer(f.t, dvcrtest.ServerOptions{
		DataDir: f.data,
		DVCR:    noGrace,
		Env:     append([]string{"KUBECONFIG=" + f.kubeconfig}, env...),
	})
}

// populate pushes three live images sharing a layer with three orphans of
// their own content.
func (f *faultRun) populate(shared *dvcrtest.DiskImage) {
	srv := f.start(nil)
	f.cluster.CreateNamespace(f.t, f.ns)
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("live-%d", i)
		dvcrtest.Push(f.t, srv, shared, "vi/"+f.ns+"/"+name, "latest")
		f.cluster.CreateVI(f.t, f.ns, name)
		orphan := "vi/" + f.ns + fmt.Sprintf("/gone-%d", i)
		dvcrtest.Push(f.t, srv, dvcrtest.MakeDisk(f.t, "gone", "raw", "1M", 32*1024*i), orphan, "latest")
		f.orphans = append(f.orphans, orphan)
	}
	srv.Stop(f.t)
}

// crashAt runs gc on a server armed to stop at fault and waits for it to.
func (f *faultRun) crashAt(fault string) {
	srv := f.start([]string{gc.FaultEnv + "=" + fault})
	out := dvcrtest.Cleaner(f.t, "--config", srv.ConfigPath, "--kubeconfig", f.kubeconfig, "gc", "run", "--yes")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := srv.Wait(ctx)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != gc.FaultExitCode {
		f.t.Fatalf("dvcr serve armed with %s: exit %v, want code %d\ngc run: %s\n%s", fault, err, gc.FaultExitCode, out.Stderr, srv.Stderr())
	}
	if out.ExitCode == 0 {
		f.t.Fatalf("gc run reported success although the server stopped:\n%s", out.Stdout)
	}
}

func (f *faultRun) checkLive(srv *dvcrtest.Server, shared *dvcrtest.DiskImage) {
	f.t.Helper()
	for i := 1; i <= 3; i++ {
		assertSameDisk(f.t, shared, dvcrtest.Pull(f.t, srv, fmt.Sprintf("vi/%s/live-%d", f.ns, i), "latest"))
	}
}

func (f *faultRun) checkInterrupted(srv *dvcrtest.Server, phase string) {
	f.t.Helper()
	out := dvcrtest.MustCleaner(f.t, "--config", srv.ConfigPath, "gc", "status", "-o", "json")
	var records []gc.Result
	if err := json.Unmarshal([]byte(out.Stdout), &records); err != nil || len(records) == 0 {
		f.t.Fatalf("gc status -o json: %v\n%s", err, out.Stdout)
	}
	r := records[0]
	if r.Result != gc.ResultFail || r.Reason != gc.ReasonInterrupted || !strings.Contains(r.Error, phase) {
		f.t.Errorf("newest record %+v: want fail, reason interrupted, an error naming %q", r, phase)
	}
	table := dvcrtest.MustCleaner(f.t, "--config", srv.ConfigPath, "gc", "status")
	if !strings.Contains(table.Stdout, "fail") || !strings.Contains(table.Stdout, "interrupted") {
		f.t.Errorf("gc status does not show the interrupted run:\n%s", table.Stdout)
	}
}

func (f *faultRun) gcRun(srv *dvcrtest.Server) gc.Result {
	f.t.Helper()
	out := dvcrtest.Cleaner(f.t, "--config", srv.ConfigPath, "--kubeconfig", f.kubeconfig, "gc", "run", "--yes", "-o", "json")
	var rec gc.Result
	if err := json.Unmarshal([]byte(out.Stdout), &rec); err != nil {
		f.t.Fatalf("gc run -o json: %v\n%s\n%s", err, out.Stdout, out.Stderr)
	}
	return rec
}

// checkFinished: the orphans are gone, and so is every trace of the runs.
func (f *faultRun) checkFinished(srv *dvcrtest.Server) {
	f.t.Helper()
	for _, repo := range f.orphans {
		if _, err := dvcrtest.SkopeoErr(f.t, "inspect", "--tls-verify=false", srv.Ref(repo, "latest")); err == nil {
			f.t.Errorf("%s still pulls", repo)
		}
	}
	state := filepath.Join(f.data, "dvcr", "gc")
	for _, dir := range []string{"trash", "journal"} {
		entries, err := os.ReadDir(filepath.Join(state, dir))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			f.t.Fatal(err)
		}
		if len(entries) > 0 {
			f.t.Errorf("%s/%s still holds %d entries", state, dir, len(entries))
		}
	}
	if _, err := os.Stat(filepath.Join(state, "running.json")); err == nil {
		f.t.Error("the marker of a run in progress is left")
	}
	repos := filepath.Join(f.data, "docker", "registry", "v2", "repositories")
	err := filepath.WalkDir(repos, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() || d.Name() != "_layers" {
			return err
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(p), "_manifests")); err != nil {
			f.t.Errorf("%s is left without _manifests", p)
		}
		return filepath.SkipDir
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

// TestServeDespiteFailedRecovery: a recovery that cannot finish (here the
// journal directory is a file) is reported, and the registry serves anyway.
func TestServeDespiteFailedRecovery(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(filepath.Join(data, "dvcr", "gc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "dvcr", "gc", "journal"), []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{DataDir: data})
	disk := dvcrtest.MakeDisk(t, "after", "raw", "1M", 32*1024)
	dvcrtest.Push(t, srv, disk, "vi/ns/after", "latest")
	assertSameDisk(t, disk, dvcrtest.Pull(t, srv, "vi/ns/after", "latest"))
	if !strings.Contains(srv.Stderr(), "serving anyway") {
		t.Errorf("the failed recovery is not reported:\n%s", srv.Stderr())
	}
}
