package dvcrtest

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// SlowUpload is a monolithic blob upload whose body is still being sent:
// a write in flight, for read-only window tests.
type SlowUpload struct {
	pw     *io.PipeWriter
	rest   []byte
	status chan int
}

// StartSlowUpload opens an upload session in repo on the registry at base
// (http://host:port), then starts the PUT and sends only its first bytes.
func StartSlowUpload(t testing.TB, base, repo string) *SlowUpload {
	t.Helper()
	data := []byte(strings.Repeat("disk-bytes ", 10000))
	dgst := fmt.Sprintf("sha256:%x", sha256.Sum256(data))
	loc := openUpload(t, base, repo)
	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPut, loc+querySep(loc)+"digest="+dgst, pr)
	req.ContentLength = int64(len(data))
	u := &SlowUpload{pw: pw, rest: data[100:], status: make(chan int, 1)}
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			u.status <- -1
			return
		}
		resp.Body.Close()
		u.status <- resp.StatusCode
	}()
	if _, err := pw.Write(data[:100]); err != nil {
		t.Fatal(err)
	}
	return u
}

// Finish sends the rest of the body and returns the response status.
func (u *SlowUpload) Finish() int {
	_, _ = u.pw.Write(u.rest)
	_ = u.pw.Close()
	return <-u.status
}

// UploadBlob uploads data as one blob of repo (POST, then a monolithic PUT).
func UploadBlob(t testing.TB, base, repo string, data []byte) {
	t.Helper()
	loc := openUpload(t, base, repo)
	req, _ := http.NewRequest(http.MethodPut, loc+querySep(loc)+"digest="+fmt.Sprintf("sha256:%x", sha256.Sum256(data)), strings.NewReader(string(data)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("uploading a blob to %s: %s", repo, resp.Status)
	}
}

// openUpload starts an upload session and returns its absolute location.
func openUpload(t testing.TB, base, repo string) string {
	t.Helper()
	resp, err := http.Post(base+"/v2/"+repo+"/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("opening an upload in %s: %s", repo, resp.Status)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "http") {
		loc = base + loc
	}
	return loc
}

func querySep(loc string) string {
	if strings.Contains(loc, "?") {
		return "&"
	}
	return "?"
}
