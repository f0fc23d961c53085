package upload

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// curl runs the real curl with a bound on its duration; stdin is a file
// path or "".
func curl(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed (hack/deps.sh installs it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "curl", append([]string{"--silent", "--show-error"}, args...)...)
	if stdin != "" {
		f, err := os.Open(stdin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd.Stdin = f
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		t.Logf("curl %v: %v\nstderr: %s\nstdout: %s", args, err, errOut.String(), out.String())
	}
	return out.String(), err
}

func TestCurlUploads(t *testing.T) {
	const size = 3<<20 + 12345 // several copy buffers and a ragged end
	tests := []struct {
		name     string
		stdin    bool
		args     func(file, url string) []string
		wantName string
	}{
		{"PUT with Content-Length", false, func(f, u string) []string { return []string{"--fail", "-T", f, u} }, "disk.img"},
		{"PUT chunked from stdin", true, func(f, u string) []string { return []string{"--fail", "-T", "-", u} }, "disk.img"},
		{"POST data-binary", false, func(f, u string) []string {
			return []string{"--fail", "-X", "POST", "--data-binary", "@" + f, u}
		}, "disk.img"},
		{"progress bar and a name", false, func(f, u string) []string {
			return []string{"--fail", "--progress-bar", "-T", f, u + "?name=my%20disk.qcow2"}
		}, "my disk.qcow2"},
		{"Content-Disposition filename", false, func(f, u string) []string {
			return []string{"--fail", "-H", `Content-Disposition: attachment; filename="../x/cd.iso"`, "-T", f, u}
		}, "cd.iso"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			file, data := randomFile(t, size)
			recv := &fakeReceiver{}
			token, url := e.register(t, recv)
			stdin := ""
			if tc.stdin {
				stdin = file
			}
			out, err := curl(t, stdin, tc.args(file, url)...)
			if err != nil {
				t.Fatalf("curl failed: %v", err)
			}
			if want := "upload complete: " + strconv.Itoa(size) + " bytes\n"; out != want {
				t.Fatalf("curl printed %q, want %q", out, want)
			}
			checkGot(t, recv, data, tc.wantName)
			if files := e.spoolFiles(t); len(files) != 0 {
				t.Fatalf("spool files left after success: %v", files)
			}
			// A used token is retired.
			if st, _, _ := do(t, http.MethodGet, url, nil, nil); st != http.StatusNotFound {
				t.Fatalf("GET after success: %d, want 404", st)
			}
			if strings.Contains(e.logText(), token) {
				t.Fatal("the token appears in the log")
			}
		})
	}
}

// TestResume drops an upload halfway, asks GET for the offset and lets curl
// -C continue it: the Receiver must get the whole file byte for byte.
func TestResume(t *testing.T) {
	const size = 2<<20 + 777
	tests := []struct {
		name       string
		chunked    bool // the dropped upload
		curlStdin  bool // the resuming curl reads standard input
		part       int
		wantOffset int
	}{
		{"Content-Length dropped, curl -C N -T file", false, false, size / 2, size / 2},
		{"chunked dropped, curl -C N -T file", true, false, 1<<20 + 3, 1<<20 + 3},
		{"Content-Length dropped, curl -C N -T - (stdin)", false, true, size / 3, size / 3},
		{"nothing received, curl -C 0", false, false, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			file, data := randomFile(t, size)
			recv := &fakeReceiver{}
			token, url := e.register(t, recv)

			conn := rawUpload(t, e.srv.URL, token, data, tc.part, tc.chunked)
			_ = conn.Close()
			waitOffset(t, url, tc.wantOffset)
			off := strconv.Itoa(tc.wantOffset)
			if n := spoolSize(spoolPath(e.spool, token)); n != int64(tc.wantOffset) {
				t.Fatalf("spool file holds %d bytes, want %d", n, tc.wantOffset)
			}
			if len(recv.uploads()) != 0 {
				t.Fatal("the receiver was called for an incomplete upload")
			}

			args := []string{"--fail", "-C", off, "-T", file, url}
			stdin := ""
			if tc.curlStdin {
				args[4], stdin = "-", file
			}
			if _, err := curl(t, stdin, args...); err != nil {
				t.Fatalf("resuming curl failed: %v", err)
			}
			checkGot(t, recv, data, "disk.img")
			if files := e.spoolFiles(t); len(files) != 0 {
				t.Fatalf("spool files left after success: %v", files)
			}
		})
	}
}

// TestCurlConflict: a second curl to a token whose upload is still being
// imported fails with 409, and the first one completes.
func TestCurlConflict(t *testing.T) {
	e := newEnv(t, Options{})
	file, data := randomFile(t, 1<<20)
	recv := &fakeReceiver{block: make(chan struct{}), entered: make(chan struct{}, 1)}
	_, url := e.register(t, recv)
	done := make(chan error, 1)
	go func() {
		_, err := curl(t, "", "--fail", "-T", file, url)
		done <- err
	}()
	select {
	case <-recv.entered:
	case <-time.After(20 * time.Second):
		t.Fatal("the first upload never reached the receiver")
	}
	out, err := curl(t, "", "--fail-with-body", "-T", file, url)
	var ee *exec.ExitError
	if err == nil || !(errorsAs(err, &ee) && ee.ExitCode() == 22) || !strings.Contains(out, "already running") {
		t.Fatalf("second curl: %v %q, want exit 22 (HTTP error) with the 409 message", err, out)
	}
	close(recv.block)
	if err := <-done; err != nil {
		t.Fatalf("first curl: %v", err)
	}
	checkGot(t, recv, data, "disk.img")
}

// TestServerTimeoutsLifted: a server with short Read/WriteTimeouts still
// takes a slow upload and answers after a slow import.
func TestServerTimeoutsLifted(t *testing.T) {
	h, err := NewHandler(Options{SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Config.WriteTimeout = 300 * time.Millisecond
	srv.Start()
	defer srv.Close()
	recv := &fakeReceiver{block: make(chan struct{}), entered: make(chan struct{}, 1)}
	token, _ := NewToken()
	h.Register(token, recv)
	go func() {
		<-recv.entered
		time.Sleep(700 * time.Millisecond)
		close(recv.block)
	}()
	file, data := randomFile(t, 600_000)
	if _, err := curl(t, "", "--fail", "--limit-rate", "600K", "-T", file, srv.URL+"/upload/"+token); err != nil {
		t.Fatalf("slow upload through short server timeouts: %v", err)
	}
	checkGot(t, recv, data, "disk.img")
}
