package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dvcr/dvcr/test/dvcrtest"
)

// TestProvisionUploadEndpoint: the upload URL of a ClusterVirtualImage
// through the real dvcr serve: an upload dropped halfway resumes with
// `curl -C <Upload-Offset> -T`, an unknown token answers 404, and a second
// upload while one runs answers 409.
func TestProvisionUploadEndpoint(t *testing.T) {
	e := newProvEnv(t, "")
	curl := dvcrtest.Tool(t, "curl", "apt-get install -y curl")
	disk := dvcrtest.MakeDiskFile(t, t.TempDir(), "upload", "qcow2", "64M", 4<<20)
	data := readFile(t, disk)
	uploadCVI := func(t *testing.T, name string) string {
		t.Helper()
		e.apply(t, fmt.Sprintf("apiVersion: virtualization.deckhouse.io/v1alpha2\nkind: ClusterVirtualImage\nmetadata:\n  name: %s\nspec:\n  dataSource:\n    type: Upload\n", name))
		return status(e.waitPhase(t, "", name, "WaitForUserUpload", time.Minute), "imageUploadURLs", "inCluster")
	}

	t.Run("resume with curl -C", func(t *testing.T) {
		u := uploadCVI(t, "resumed")
		half := len(data) / 2
		dropUpload(t, u, data, half)
		offset := waitUploadOffset(t, u)
		if offset <= 0 || offset > half {
			t.Fatalf("Upload-Offset %d after dropping the connection at %d bytes", offset, half)
		}
		if st := status(e.image(t, "", "resumed"), "phase"); st != "WaitForUserUpload" {
			t.Errorf("phase %q after an interrupted upload, want WaitForUserUpload", st)
		}
		out, err := exec.Command(curl, "--fail", "--silent", "--show-error", "-C", strconv.Itoa(offset), "-T", disk, u).CombinedOutput()
		if err != nil {
			t.Fatalf("curl -C %d -T: %v\n%s", offset, err, out)
		}
		obj := e.waitPhase(t, "", "resumed", "Ready", time.Minute)
		if status(obj, "format") != "qcow2" || status(obj, "size", "unpackedBytes") != strconv.Itoa(64<<20) {
			t.Errorf("resumed upload: format %q, unpacked %q", status(obj, "format"), status(obj, "size", "unpackedBytes"))
		}
		if _, got := untarSingle(t, pulledLayer(t, e.srv, "cvi/resumed")); !bytes.Equal(got, data) {
			t.Fatal("the resumed upload differs from the file")
		}
	})

	t.Run("unknown token", func(t *testing.T) {
		u := e.srv.URL() + "/upload/0123456789abcdef0123456789abcdef"
		for _, method := range []string{http.MethodGet, http.MethodPut} {
			req, _ := http.NewRequest(method, u, bytes.NewReader(data[:4096]))
			if code := do(t, req); code != http.StatusNotFound {
				t.Errorf("%s to an unknown token: HTTP %d, want 404", method, code)
			}
		}
	})

	t.Run("concurrent upload", func(t *testing.T) {
		u := uploadCVI(t, "contended")
		pr, pw := io.Pipe()
		req, _ := http.NewRequest(http.MethodPut, u, pr)
		req.ContentLength = int64(len(data))
		first := make(chan int, 1)
		go func() { first <- do(t, req) }()
		if _, err := pw.Write(data[:1<<20]); err != nil { // the slow client's first megabyte
			t.Fatal(err)
		}
		waitStatus(t, u, http.StatusConflict) // the first upload holds the token
		out, _ := exec.Command(curl, "--silent", "--output", "/dev/null", "--write-out", "%{http_code}", "-T", disk, u).CombinedOutput()
		if string(out) != "409" {
			t.Errorf("a second upload while one runs: HTTP %s, want 409", out)
		}
		go func() { _, _ = pw.Write(data[1<<20:]); _ = pw.Close() }()
		if code := <-first; code != http.StatusCreated {
			t.Fatalf("the first upload: HTTP %d, want 201", code)
		}
		e.waitPhase(t, "", "contended", "Ready", time.Minute)
		if _, got := untarSingle(t, pulledLayer(t, e.srv, "cvi/contended")); !bytes.Equal(got, data) {
			t.Fatal("the uploaded image differs from the file")
		}
	})
}

// dropUpload sends a PUT announcing all of data, sends n bytes of it and
// resets the connection.
func dropUpload(t *testing.T, rawURL string, data []byte, n int) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n", u.RequestURI(), u.Host, len(data))
	if _, err := conn.Write(data[:n]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the server reads what was sent
	_ = conn.(*net.TCPConn).SetLinger(0)
}

// waitUploadOffset polls GET on an upload URL until it answers 200 (the
// dropped upload is over) and returns its Upload-Offset.
func waitUploadOffset(t *testing.T, u string) int {
	t.Helper()
	resp := waitStatus(t, u, http.StatusOK)
	n, err := strconv.Atoi(resp.Header.Get("Upload-Offset"))
	if err != nil {
		t.Fatalf("Upload-Offset %q: %v", resp.Header.Get("Upload-Offset"), err)
	}
	return n
}

// waitStatus polls GET u until it answers code.
func waitStatus(t *testing.T, u string, code int) *http.Response {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	last := 0
	for time.Now().Before(deadline) {
		resp, err := http.Get(u)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if last = resp.StatusCode; last == code {
				return resp
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("GET %s: HTTP %d, want %d within 20s", strings.SplitN(u, "/upload/", 2)[0]+"/upload/…", last, code)
	return nil
}

// do sends req and returns the status code (-1 when it fails).
func do(t *testing.T, req *http.Request) int {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Logf("%s %s: %v", req.Method, req.URL.Path[:min(len(req.URL.Path), 16)], err)
		return -1
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
