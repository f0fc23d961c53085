//go:build bench

// The GC benchmark's runs: DVCR through dvcr serve and offline, upstream,
// and what each measures.

package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/dvcr/dvcr/gc"
	"github.com/dvcr/dvcr/test/dvcrtest"
	"github.com/dvcr/dvcr/units"
)

// gcMeasure is one run of one system.
type gcMeasure struct {
	wall         time.Duration // measured outside the process(es)
	recordWall   time.Duration // finishedAt - startedAt of the run's record (DVCR)
	readOnly     time.Duration // DVCR server only
	freed        int64         // blob data bytes gone from storage
	recordFreed  int64         // freed of the record (DVCR)
	blobsDeleted int
	manifests    int   // untagged manifests deleted (DVCR)
	repos        int   // repositories deleted
	rss          int64 // peak RSS of the process doing the work
	cliRSS       int64 // peak RSS of dvcr-cleaner in server mode
	phases       []gcPhase
	load         string // 1-minute load average when the run started (other work on the machine)
	result       *tree  // the storage tree the run left
}

type gcPhase struct {
	at   time.Duration
	line string
}

func (m gcMeasure) String() string {
	s := fmt.Sprintf("wall %s", m.wall.Round(time.Millisecond))
	if m.recordWall > 0 {
		s += fmt.Sprintf(" (record %s)", m.recordWall.Round(time.Millisecond))
	}
	return s + fmt.Sprintf(", read-only %s, freed %s, %d blobs deleted, %d repositories deleted, peak RSS %s, load %s",
		m.readOnly.Round(time.Millisecond), units.FormatBytes(uint64(m.freed)), m.blobsDeleted, m.repos, gcMib(m.rss), m.load)
}

func gcLoad() string {
	data, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(data)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

func gcMib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// gcCommand runs a command under /usr/bin/time, which reports the peak RSS
// of the command alone: the maxrss of a direct child of the test process
// also counts the test process (the child shares its memory until exec).
type gcCommand struct {
	*exec.Cmd
	rssFile string
}

func gcCmd(ctx context.Context, t *testing.T, name string, args ...string) *gcCommand {
	t.Helper()
	if _, err := os.Stat("/usr/bin/time"); err != nil {
		t.Fatalf("/usr/bin/time is needed to measure peak RSS (Debian package time; make deps installs it): %v", err)
	}
	f := filepath.Join(t.TempDir(), "rss")
	return &gcCommand{Cmd: exec.CommandContext(ctx, "/usr/bin/time", append([]string{"-f", "%M", "-o", f, name}, args...)...), rssFile: f}
}

// rss is the peak RSS of the command after it ran.
func (c *gcCommand) rss(t *testing.T) int64 {
	t.Helper()
	data, err := os.ReadFile(c.rssFile)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		t.Fatalf("/usr/bin/time wrote nothing")
	}
	kb, err := strconv.ParseInt(f[len(f)-1], 10, 64)
	if err != nil {
		t.Fatalf("/usr/bin/time: %q: %v", data, err)
	}
	return kb * 1024
}

// runCleaner runs `dvcr-cleaner ... gc run --yes -o json`, timestamping the
// progress lines it prints on stderr, and reads the run's record.
func gcRunCleaner(t *testing.T, cleaner string, args ...string) (gcMeasure, *gc.Result) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := gcCmd(ctx, t, cleaner, append(args, "gc", "run", "--yes", "-o", "json")...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var m gcMeasure
	var stderr strings.Builder
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		line := sc.Text()
		stderr.WriteString(line + "\n")
		if _, rest, ok := strings.Cut(line, " "); ok { // drop the CLI's HH:MM:SS
			line = rest
		}
		m.phases = append(m.phases, gcPhase{time.Since(start), line})
	}
	err = cmd.Wait()
	m.wall = time.Since(start)
	if err != nil {
		t.Fatalf("dvcr-cleaner gc run: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	var res gc.Result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("reading the record: %v\n%s", err, stdout.String())
	}
	if !res.Succeeded() || len(res.Warnings) > 0 || res.Sweep == nil {
		t.Fatalf("gc run did not succeed cleanly:\n%s", stdout.String())
	}
	m.recordWall = res.FinishedAt.Sub(res.StartedAt)
	m.readOnly = time.Duration(res.ReadOnlySeconds * float64(time.Second))
	m.recordFreed = res.Freed
	m.blobsDeleted = res.Sweep.BlobsDeleted
	m.manifests = res.Sweep.ManifestsDeleted
	m.repos = len(res.Deleted)
	m.rss = cmd.rss(t)
	return m, &res
}

// checkDVCR checks a DVCR run's record and what remains in storage.
func gcCheckDVCR(t *testing.T, ds *gcDataset, who, data string, m *gcMeasure) {
	t.Helper()
	if m.repos != ds.size.orphans {
		t.Fatalf("%s: %d repositories deleted, want %d", who, m.repos, ds.size.orphans)
	}
	if m.manifests != ds.untagged-gcUntaggedOf(ds, false) {
		t.Fatalf("%s: %d untagged manifests deleted, want %d (those of the live repositories)", who, m.manifests, ds.untagged-gcUntaggedOf(ds, false))
	}
	m.freed = gcCheckRemaining(t, ds, who, data)
	if m.freed != m.recordFreed {
		t.Fatalf("%s: the record says %d bytes freed, storage shrank by %d", who, m.recordFreed, m.freed)
	}
	if want := ds.blobs - len(ds.keep); m.blobsDeleted != want {
		t.Fatalf("%s: %d blobs deleted, want %d", who, m.blobsDeleted, want)
	}
}

func gcUntaggedOf(ds *gcDataset, live bool) int {
	n := 0
	for _, r := range ds.repos {
		if r.live == live {
			n += len(r.old)
		}
	}
	return n
}

const gcDVCRSettings = "  gc:\n    gracePeriod: 0s\n"

// runDVCRServer runs GC through a running dvcr serve, the product's mode.
// With validate it first pulls images through the server (the directly
// written layout is what distribution serves) and after the run checks what
// is gone and what is still served.
func gcRunDVCRServer(t *testing.T, ds *gcDataset, work, cleaner, kubeconfig string, validate bool) gcMeasure {
	t.Helper()
	data := gcRunDir(work)
	gcCopyDataset(t, ds.root, data)
	defer gcRemoveCopy(t, data)
	load := gcLoad()
	srv := dvcrtest.StartServer(t, dvcrtest.ServerOptions{DataDir: data, DVCR: gcDVCRSettings, Env: []string{"KUBECONFIG=" + kubeconfig}})
	defer srv.Stop(t)
	pid := gcServerPID(t, srv.ConfigPath)
	var live, orphan *gcRepo
	for _, r := range ds.repos {
		if r.live && len(r.old) > 0 && live == nil {
			live = r
		}
		if !r.live && orphan == nil {
			orphan = r
		}
	}
	if validate {
		gcPull(t, srv.URL(), live.path, "latest", live.tagged, http.StatusOK)
		gcPull(t, srv.URL(), live.path, live.old[0].String(), live.old[0], http.StatusOK)
		gcPull(t, srv.URL(), orphan.path, "latest", orphan.tagged, http.StatusOK)
	}
	m, _ := gcRunCleaner(t, cleaner, "--config", srv.ConfigPath, "--kubeconfig", kubeconfig)
	m.cliRSS = m.rss
	m.load = load
	m.rss = gcVmHWM(t, pid)
	if validate {
		gcPull(t, srv.URL(), live.path, "latest", live.tagged, http.StatusOK)
		gcPull(t, srv.URL(), live.path, live.old[0].String(), live.old[0], http.StatusNotFound)
		gcPull(t, srv.URL(), orphan.path, "latest", orphan.tagged, http.StatusNotFound)
	}
	srv.Stop(t)
	if m.readOnly <= 0 {
		t.Fatalf("dvcr serve: the record has no read-only time")
	}
	gcCheckDVCR(t, ds, "dvcr serve", data, &m)
	m.result = readTree(t, data)
	return m
}

// runDVCROffline runs GC with no server: the CLI works on storage itself.
func gcRunDVCROffline(t *testing.T, ds *gcDataset, work, cleaner, kubeconfig string) gcMeasure {
	t.Helper()
	data := gcRunDir(work)
	gcCopyDataset(t, ds.root, data)
	defer gcRemoveCopy(t, data)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yml")
	text := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\ndvcr:\n  adminSocket: %s\n%s",
		data, filepath.Join(dir, "admin.sock"), gcDVCRSettings)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	load := gcLoad()
	m, _ := gcRunCleaner(t, cleaner, "--config", cfg, "--kubeconfig", kubeconfig)
	m.load = load
	gcCheckDVCR(t, ds, "dvcr offline", data, &m)
	return m
}

// runUpstream removes the orphan repositories with rm -rf and runs upstream
// `registry garbage-collect --delete-untagged` (its listing on stdout goes
// to /dev/null).
func gcRunUpstream(t *testing.T, ds *gcDataset, work, registry string) gcMeasure {
	t.Helper()
	data := gcRunDir(work)
	gcCopyDataset(t, ds.root, data)
	defer gcRemoveCopy(t, data)
	cfg := filepath.Join(work, "upstream.yml")
	text := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:0\n", data)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-rf"}
	for _, r := range ds.repos {
		if !r.live {
			args = append(args, filepath.Join(data, "docker", "registry", "v2", "repositories", filepath.FromSlash(r.path)))
		}
	}
	m := gcMeasure{load: gcLoad()}
	start := time.Now()
	rm := gcCmd(context.Background(), t, "rm", args...)
	if out, err := rm.CombinedOutput(); err != nil {
		t.Fatalf("rm -rf orphans: %v\n%s", err, out)
	}
	rmTime := time.Since(start)
	collect := gcCmd(context.Background(), t, registry, "garbage-collect", "--delete-untagged", cfg)
	var stderr bytes.Buffer
	collect.Stderr = &stderr
	if err := collect.Run(); err != nil {
		t.Fatalf("registry garbage-collect: %v\n%s", err, stderr.String())
	}
	m.wall = time.Since(start)
	m.phases = []gcPhase{{rmTime, "rm -rf of the orphan repositories done"}, {m.wall, "registry garbage-collect done"}}
	m.rss = max(rm.rss(t), collect.rss(t))
	m.repos = ds.size.orphans
	got, _ := gcBlobsIn(t, data)
	m.blobsDeleted = ds.blobs - len(got)
	m.freed = gcCheckRemaining(t, ds, "upstream", data)
	m.result = readTree(t, data)
	return m
}

// upstreamRegistry returns bin/registry, building it when missing.
func gcUpstreamRegistry(t *testing.T, root string) string {
	t.Helper()
	bin := filepath.Join(root, "bin", "registry")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	cmd := exec.Command("go", "install", gcUpstreamRegistryModule)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOBIN="+filepath.Join(root, "bin"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install %s: %v\n%s", gcUpstreamRegistryModule, err, out)
	}
	return bin
}

// serverPID finds the dvcr serve process started with config.
func gcServerPID(t *testing.T, config string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if len(args) >= 2 && filepath.Base(args[0]) == "dvcr" && args[1] == "serve" && slices.Contains(args, config) {
			return pid
		}
	}
	t.Fatalf("no dvcr serve process with --config %s", config)
	return 0
}

// vmHWM is the peak resident set size of a running process.
func gcVmHWM(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb * 1024
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// pull fetches repo:ref through the registry and, when it is served, every
// blob of the image, checking the digests.
func gcPull(t *testing.T, base, repo, ref string, want digest.Digest, status int) {
	t.Helper()
	get := func(url, accept string) (int, []byte) {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}
	code, body := get(base+"/v2/"+repo+"/manifests/"+ref, v1.MediaTypeImageManifest)
	if code != status {
		t.Fatalf("GET %s manifest %s: %d, want %d: %s", repo, ref, code, status, body)
	}
	if code != http.StatusOK {
		return
	}
	if d := digest.FromBytes(body); d != want {
		t.Fatalf("GET %s manifest %s: digest %s, want %s", repo, ref, d, want)
	}
	var m v1.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	for _, b := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		code, data := get(base+"/v2/"+repo+"/blobs/"+b.Digest.String(), "")
		if code != http.StatusOK || digest.FromBytes(data) != b.Digest || int64(len(data)) != b.Size {
			t.Fatalf("GET %s blob %s: %d, %d bytes", repo, b.Digest, code, len(data))
		}
	}
}
