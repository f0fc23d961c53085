package upload

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// received is what the fake Receiver saw of one upload.
type received struct {
	sum  [32]byte
	size int64
	name string
}

// fakeReceiver records each upload; it fails with err, and when block is
// set it waits for it (or for the context) after signalling entered.
type fakeReceiver struct {
	mu      sync.Mutex
	got     []received
	err     error
	block   chan struct{}
	entered chan struct{}
	ctxErr  error
}

func (f *fakeReceiver) Receive(ctx context.Context, file *os.File, size int64, name string) error {
	h := sha256.New()
	n, err := io.Copy(h, file)
	if err != nil {
		return err
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			f.mu.Lock()
			f.ctxErr = ctx.Err()
			f.mu.Unlock()
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if n != size {
		return fmt.Errorf("read %d bytes, told %d", n, size)
	}
	f.got = append(f.got, received{sum: sum, size: size, name: name})
	return f.err
}

func (f *fakeReceiver) uploads() []received {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]received(nil), f.got...)
}

// env is a Handler behind an httptest server on 127.0.0.1, with its log.
type env struct {
	h     *Handler
	srv   *httptest.Server
	spool string
	logMu sync.Mutex
	log   bytes.Buffer
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	e := &env{spool: filepath.Join(t.TempDir(), "spool")}
	opts.SpoolDir = e.spool
	opts.Logger = slog.New(slog.NewTextHandler(logWriter{e}, nil))
	h, err := NewHandler(opts)
	if err != nil {
		t.Fatal(err)
	}
	e.h = h
	mux := http.NewServeMux()
	mux.Handle("/upload/", h)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) logText() string {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	return e.log.String()
}

// register makes a fresh token valid for r and returns it with its URL.
func (e *env) register(t *testing.T, r Receiver) (token, url string) {
	t.Helper()
	token, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	e.h.Register(token, r)
	return token, e.srv.URL + "/upload/" + token
}

// spoolFiles lists the names in the spool directory.
func (e *env) spoolFiles(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(e.spool)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range ents {
		names = append(names, d.Name())
	}
	return names
}

// do sends one request and returns status, headers and body.
func do(t *testing.T, method, url string, body []byte, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// waitReady polls GET until the token is ready (no upload running) and
// returns its Upload-Offset.
func waitReady(t *testing.T, url string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, hdr, body := do(t, http.MethodGet, url, nil, nil)
		if st == http.StatusOK {
			return hdr.Get("Upload-Offset")
		}
		if st != http.StatusConflict || time.Now().After(deadline) {
			t.Fatalf("GET: %d %q, want 200", st, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitRunning polls GET until an upload runs with at least min bytes.
func waitRunning(t *testing.T, url string, min int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, hdr, _ := do(t, http.MethodGet, url, nil, nil)
		var off int64
		fmt.Sscan(hdr.Get("Upload-Offset"), &off)
		if st == http.StatusConflict && off >= min {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET: %d offset %d, want 409 with ≥ %d", st, off, min)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rawUpload opens a connection and sends a PUT of which only part of the
// body is written; chunked selects Transfer-Encoding: chunked, else the
// Content-Length of the whole file is announced. The caller closes the
// connection (a dropped upload) or keeps it open (a stalled one).
func rawUpload(t *testing.T, srvURL, token string, file []byte, part int, chunked bool) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(srvURL, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	var b bytes.Buffer
	fmt.Fprintf(&b, "PUT /upload/%s HTTP/1.1\r\nHost: test\r\n", token)
	if chunked {
		fmt.Fprintf(&b, "Transfer-Encoding: chunked\r\n\r\n%x\r\n", part)
		b.Write(file[:part])
		b.WriteString("\r\n")
	} else {
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(file))
		b.Write(file[:part])
	}
	if _, err := conn.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
	return conn
}

// readResponse reads the answer on a raw connection.
func readResponse(t *testing.T, conn net.Conn) (int, string) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// randomFile writes n random bytes to a temporary file.
func randomFile(t *testing.T, n int) (path string, data []byte) {
	t.Helper()
	data = make([]byte, n)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "disk.qcow2")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

// checkGot verifies that the receiver got exactly data, once, named name.
func checkGot(t *testing.T, f *fakeReceiver, data []byte, name string) {
	t.Helper()
	got := f.uploads()
	if len(got) != 1 {
		t.Fatalf("receiver got %d uploads, want 1", len(got))
	}
	if got[0].sum != sha256.Sum256(data) || got[0].size != int64(len(data)) {
		t.Fatalf("receiver got %d bytes with another sha256, want the %d bytes sent", got[0].size, len(data))
	}
	if got[0].name != name {
		t.Fatalf("receiver got name %q, want %q", got[0].name, name)
	}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// waitOffset polls GET until the token is ready with want bytes kept: a
// dropped upload may still be on its way to the handler when it returns.
func waitOffset(t *testing.T, url string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, hdr, body := do(t, http.MethodGet, url, nil, nil)
		if st == http.StatusOK && hdr.Get("Upload-Offset") == strconv.Itoa(want) {
			return
		}
		if (st != http.StatusOK && st != http.StatusConflict) || time.Now().After(deadline) {
			t.Fatalf("GET: %d %q offset %q, want 200 with offset %d", st, body, hdr.Get("Upload-Offset"), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logWriter appends to e.log under e.logMu.
type logWriter struct{ e *env }

func (w logWriter) Write(p []byte) (int, error) {
	w.e.logMu.Lock()
	defer w.e.logMu.Unlock()
	return w.e.log.Write(p)
}
