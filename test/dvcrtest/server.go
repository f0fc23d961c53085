package dvcrtest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is a `dvcr serve` process started by a test.
type Server struct {
	Addr       string // host:port of the registry
	DebugAddr  string // host:port of the debug endpoint, with ServerOptions.Debug
	DataDir    string // storage root
	ConfigPath string
	AdminSock  string

	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan struct{}
	err    error
}

// ServerOptions tune the configuration of a test server.
type ServerOptions struct {
	// DataDir reuses a storage root (to restart on the same data); default t.TempDir().
	DataDir string
	// DVCR is extra YAML placed under the dvcr: key, indented by the caller
	// with two spaces, e.g. "  gc:\n    gracePeriod: 0s\n".
	DVCR string
	// Env is added to the process environment (e.g. KUBECONFIG=...).
	Env []string
	// Registry is extra top-level YAML of the registry part (e.g. an auth:
	// section), unindented, ending with a newline.
	Registry string
	// Debug serves the debug endpoint (health, Prometheus metrics) on a
	// free port, in DebugAddr.
	Debug bool
	// Storage replaces the storage section's driver (default: filesystem
	// under DataDir), e.g. S3.StorageYAML(); unindented, ending with a newline.
	Storage string
	// HTTPSecret is http.secret, the same on replicas of one store.
	HTTPSecret string
	// Log replaces the log: section (default: level warn, no access log);
	// unindented, ending with a newline.
	Log string
	// Args are added to the command line after --config.
	Args []string
}

var (
	listenLine = regexp.MustCompile(`registry listening on (\S+)`)
	debugLine  = regexp.MustCompile(`debug endpoint listening on (\S+)`)
)

// StartServer writes a config for a fresh registry on a free loopback port,
// starts bin/dvcr serve with it and waits until it answers /v2/. The server
// is stopped when the test ends.
func StartServer(t testing.TB, opts ServerOptions) *Server {
	t.Helper()
	bin := Binary(t, "dvcr")
	dir := t.TempDir()
	s := &Server{DataDir: opts.DataDir, AdminSock: filepath.Join(dir, "admin.sock"), done: make(chan struct{})}
	if s.DataDir == "" {
		s.DataDir = filepath.Join(dir, "data")
	}
	s.ConfigPath = filepath.Join(dir, "config.yml")
	if err := os.WriteFile(s.ConfigPath, []byte(s.config(opts)), 0o644); err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(bin, append([]string{"serve", "--config", s.ConfigPath}, opts.Args...)...)
	s.cmd.Env = append(os.Environ(), opts.Env...)
	pipe, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go s.readStderr(pipe, addr)
	go func() { s.err = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() { s.Stop(t) })
	select {
	case s.Addr = <-addr:
	case <-s.done:
		t.Fatalf("dvcr serve exited before listening: %v\n%s", s.err, s.Stderr())
	case <-time.After(30 * time.Second):
		t.Fatalf("dvcr serve did not start listening within 30s:\n%s", s.Stderr())
	}
	s.waitReady(t)
	return s
}

func (s *Server) config(opts ServerOptions) string {
	debug := ""
	if opts.Debug {
		debug = "  debug:\n    addr: 127.0.0.1:0\n    prometheus:\n      enabled: true\n"
	}
	driver := fmt.Sprintf("  filesystem:\n    rootdirectory: %s\n", s.DataDir)
	secret := ""
	if opts.HTTPSecret != "" {
		secret = "  secret: " + opts.HTTPSecret + "\n"
	}
	if opts.Storage != "" {
		driver = opts.Storage
	}
	log := "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
	if opts.Log != "" {
		log = opts.Log
	}
	return fmt.Sprintf(`version: 0.1
%sstorage:
%s  cache:
    blobdescriptor: inmemory
  delete:
    enabled: true
http:
  addr: 127.0.0.1:0
%s%s%sdvcr:
  adminSocket: %s
%s`, log, driver, secret, debug, opts.Registry, s.AdminSock, opts.DVCR)
}

func (s *Server) readStderr(r io.Reader, addr chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	sent := false
	for sc.Scan() {
		line := sc.Text()
		s.mu.Lock()
		s.stderr.WriteString(line + "\n")
		s.mu.Unlock()
		if m := debugLine.FindStringSubmatch(line); m != nil {
			s.mu.Lock()
			s.DebugAddr = m[1]
			s.mu.Unlock()
		}
		if m := listenLine.FindStringSubmatch(line); m != nil && !sent {
			addr <- m[1]
			sent = true
		}
	}
}

func (s *Server) waitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.URL() + "/v2/")
		if err == nil {
			resp.Body.Close()
			// 401: up, behind auth.htpasswd.
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("dvcr serve at %s did not answer /v2/ within 20s:\n%s", s.Addr, s.Stderr())
}

// URL is the registry's base URL.
func (s *Server) URL() string { return "http://" + s.Addr }

// Stderr is what the server printed so far.
func (s *Server) Stderr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

// Stop sends SIGTERM and waits for a graceful exit (SIGKILL after 30s).
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		t.Errorf("dvcr serve did not stop within 30s of SIGTERM:\n%s", s.Stderr())
	}
}

// Wait waits for the process to exit and returns its error.
func (s *Server) Wait(ctx context.Context) error {
	select {
	case <-s.done:
		return s.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Signal sends sig to the server process.
func (s *Server) Signal(sig os.Signal) error { return s.cmd.Process.Signal(sig) }

// Ref is the docker:// reference of repo:tag on this server, for skopeo.
func (s *Server) Ref(repo, tag string) string {
	return "docker://" + s.Addr + "/" + strings.TrimPrefix(repo, "/") + ":" + tag
}

// MetricsURL is the Prometheus endpoint of a server started with Debug.
func (s *Server) MetricsURL(t testing.TB) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		addr := s.DebugAddr
		s.mu.Unlock()
		if addr != "" {
			return "http://" + addr + "/metrics"
		}
		if time.Now().After(deadline) {
			t.Fatalf("the debug endpoint did not start (ServerOptions.Debug set?):\n%s", s.Stderr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// PID is the process id of dvcr serve.
func (s *Server) PID() int { return s.cmd.Process.Pid }
