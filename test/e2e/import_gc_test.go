package e2e

import (
	"bytes"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/dvcr/dvcr/test/dvcrtest"
)

// TestImportWaitsForGCWindow: an import in the middle of its transfer when a
// garbage collection run starts meets the read-only window, says it waits,
// and completes after the run, byte-identical; the run deletes nothing of it.
func TestImportWaitsForGCWindow(t *testing.T) {
	e := newGCEnv(t, noGrace)
	e.cluster.CreateCVI(t, "racing")
	data := make([]byte, 24<<20)
	_, _ = rand.Read(data)
	sent, release := make(chan struct{}), make(chan struct{})
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		_, _ = w.Write(data[:12<<20])
		http.NewResponseController(w).Flush()
		close(sent)
		<-release // the rest only once the window is open
		_, _ = w.Write(data[12<<20:])
	}))
	defer web.Close()

	imported := make(chan dvcrtest.ImportRun, 1)
	go func() { imported <- dvcrtest.Import(t, e.srv, web.URL+"/racing.raw", "cvi/racing") }()
	<-sent
	waitUploadBytes(t, e.srv, "cvi/racing", 8<<20) // the first chunk is in

	hold := dvcrtest.StartSlowUpload(t, e.srv.URL(), "vi/default/slow") // keeps the window open
	collected := make(chan dvcrtest.CleanerResult, 1)
	go func() { collected <- e.cleaner(t, "gc", "run", "--yes") }()
	waitReadOnly(t, e.srv.URL())
	close(release)
	time.Sleep(2 * time.Second) // the next chunk meets the window
	if status := hold.Finish(); status != http.StatusCreated {
		t.Fatalf("upload holding the window: %d", status)
	}
	if res := <-collected; res.ExitCode != 0 {
		t.Fatalf("gc run: %s\n%s", res.Stdout, res.Stderr)
	}
	run := <-imported
	if run.ExitCode != 0 {
		t.Fatalf("import across the window: %s", run.Stderr)
	}
	if !hasEvent(run, "waiting", "read-only") {
		t.Errorf("the import did not say it waited for the window: %+v", run.Events)
	}
	if _, got := untarSingle(t, pulledLayer(t, e.srv, "cvi/racing")); !bytes.Equal(got, data) {
		t.Fatal("the image imported across the window differs from the source")
	}
}

// waitUploadBytes polls the filesystem storage until an upload session of
// repo holds at least n bytes.
func waitUploadBytes(t *testing.T, srv *dvcrtest.Server, repo string, n int64) {
	t.Helper()
	pattern := filepath.Join(srv.DataDir, "docker", "registry", "v2", "repositories", repo, "_uploads", "*", "data")
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		matches, _ := filepath.Glob(pattern)
		for _, m := range matches {
			if st, err := os.Stat(m); err == nil && st.Size() >= n {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no upload of %d bytes in %s", n, repo)
}
