//go:build bench

// The provisioning benchmark's dvcr serve and its metrics.

package bench

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

type pbServer struct {
	cmd       *exec.Cmd
	base      string // http://127.0.0.1:PORT
	debugAddr string
	root      string
	dir       string
	stderr    *ppLockedBuffer
	done      chan struct{}
}

func (s *pbServer) pid() int           { return s.cmd.Process.Pid }
func (s *pbServer) metricsURL() string { return "http://" + s.debugAddr + "/metrics" }

// pbStartServer starts `dvcr serve` on a fresh storage root under dir, with
// the debug endpoint (Prometheus) on; with kubeconfig, provisioning on with
// concurrency imports at once.
func pbStartServer(t *testing.T, dvcrBin, dir, kubeconfig string, concurrency int) *pbServer {
	t.Helper()
	root := filepath.Join(dir, "data")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	var lastErr string
	for attempt := 0; attempt < 3; attempt++ {
		port, debugPort := ppFreePort(t), ppFreePort(t)
		cfgText := "version: 0.1\n" +
			"log: {level: error, accesslog: {disabled: true}}\n" +
			"storage: {filesystem: {rootdirectory: " + root + "}, cache: {blobdescriptor: inmemory}, delete: {enabled: true}}\n" +
			"http: {addr: 127.0.0.1:" + strconv.Itoa(port) + ", debug: {addr: 127.0.0.1:" + strconv.Itoa(debugPort) + ", prometheus: {enabled: true}}}\n" +
			"dvcr:\n  adminSocket: " + filepath.Join(dir, "admin.sock") + "\n"
		if kubeconfig != "" {
			cfgText += fmt.Sprintf("  provisioning: {enabled: true, concurrency: %d}\n", concurrency)
		}
		cfg := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(cfg, []byte(cfgText), 0o644); err != nil {
			t.Fatal(err)
		}
		s := &pbServer{base: "http://127.0.0.1:" + strconv.Itoa(port), debugAddr: "127.0.0.1:" + strconv.Itoa(debugPort),
			root: root, dir: dir, stderr: &ppLockedBuffer{}, done: make(chan struct{})}
		s.cmd = exec.Command(dvcrBin, "serve", "--config", cfg)
		s.cmd.Env = os.Environ()
		if kubeconfig != "" {
			s.cmd.Env = append(s.cmd.Env, "KUBECONFIG="+kubeconfig)
		}
		s.cmd.Stdout, s.cmd.Stderr = s.stderr, s.stderr
		if err := s.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = s.cmd.Wait(); close(s.done) }()
		rs := &ppRegServer{base: s.base, done: s.done}
		if err := rs.waitReady(); err != nil {
			lastErr = fmt.Sprintf("%v\n%s", err, s.stderr)
			s.kill()
			continue
		}
		t.Cleanup(s.kill)
		return s
	}
	t.Fatalf("dvcr serve did not start: %s", lastErr)
	return nil
}

func (s *pbServer) kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

// cleanup stops the server and removes its storage root.
func (s *pbServer) cleanup(t *testing.T) {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Logf("dvcr serve did not stop on SIGTERM; killing")
		s.kill()
	}
	if err := os.RemoveAll(s.root); err != nil {
		t.Fatal(err)
	}
}

func pbVmRSS(t *testing.T, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

type pbReqKey struct{ code, method string }

var pbLabel = regexp.MustCompile(`(\w+)="([^"]*)"`)

// pbMetrics reads rest_client_requests_total by code and method (summed
// over hosts).
func pbMetrics(t *testing.T, url string) map[pbReqKey]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s", url, resp.Status)
	}
	out := map[pbReqKey]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, "rest_client_requests_total{")
		if !ok {
			continue
		}
		i := strings.LastIndexByte(rest, '}')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest[i+1:]), 64)
		if err != nil {
			t.Fatalf("metrics: %q", line)
		}
		var k pbReqKey
		for _, m := range pbLabel.FindAllStringSubmatch(rest[:i], -1) {
			switch m[1] {
			case "code":
				k.code = m[2]
			case "method":
				k.method = m[2]
			}
		}
		out[k] += v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// pbSum adds the counters of method ("" for all).
func pbSum(m map[pbReqKey]float64, method string) float64 {
	var n float64
	for k, v := range m {
		if method == "" || k.method == method {
			n += v
		}
	}
	return n
}

// pbWaitSettled waits until the controller has made requests and their
// count has not moved for a second (at most 30 s).
func pbWaitSettled(t *testing.T, s *pbServer) map[pbReqKey]float64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var prev float64 = -1
	stable := 0
	for time.Now().Before(deadline) {
		m := pbMetrics(t, s.metricsURL())
		n := pbSum(m, "")
		if n > 0 && n == prev {
			stable++
			if stable >= 4 {
				return m
			}
		} else {
			stable = 0
		}
		prev = n
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("the controller's API requests did not settle within 30 s (rest_client_requests_total %v)\nserver:\n%s", prev, s.stderr)
	return nil
}

func pbMethods(m map[string]float64) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var s []string
	for _, k := range keys {
		s = append(s, fmt.Sprintf("%s %.0f", k, m[k]))
	}
	return strings.Join(s, ", ")
}
