package source

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dvcr/dvcr/test/testca"
)

// flakyServer serves one file and can misbehave: drop the first
// connection halfway, ignore Range, change the object, drop forever or
// stall. It records each request's Range header.
type flakyServer struct {
	data    []byte
	mode    string // "", "drop", "ignore-range", "change", "always-drop", "chunked-drop", "chunked-ranges", "stall"
	mu      sync.Mutex
	ranges  []string
	modTime time.Time
	stop    chan struct{}
}

func newFlaky(t *testing.T, data []byte, mode string) (*flakyServer, *httptest.Server) {
	t.Helper()
	fs := &flakyServer{data: data, mode: mode, modTime: time.Unix(1700000000, 0), stop: make(chan struct{})}
	srv := httptest.NewServer(fs)
	t.Cleanup(func() { close(fs.stop); srv.Close() })
	return fs, srv
}

func (fs *flakyServer) requests() []string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]string(nil), fs.ranges...)
}

func (fs *flakyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fs.mu.Lock()
	n := len(fs.ranges)
	fs.ranges = append(fs.ranges, r.Header.Get("Range"))
	fs.mu.Unlock()
	half := len(fs.data) / 2
	switch {
	case fs.mode == "stall":
		fs.stall(w, half)
	case fs.mode == "chunked-drop":
		fs.hijack(w, "Transfer-Encoding: chunked\r\n", fmt.Appendf(nil, "%x\r\n%s\r\n", half, fs.data[:half]))
	case fs.mode == "chunked-ranges" && n == 0:
		fs.hijack(w, "Transfer-Encoding: chunked\r\nAccept-Ranges: bytes\r\n", fmt.Appendf(nil, "%x\r\n%s\r\n", half, fs.data[:half]))
	case fs.mode == "always-drop" && n > 0:
		fs.hijack(w, fmt.Sprintf("Content-Length: %d\r\nContent-Range: bytes %d-%d/%d\r\n",
			len(fs.data)-half, half, len(fs.data)-1, len(fs.data)), nil)
	case fs.mode != "" && n == 0:
		fs.hijack(w, fmt.Sprintf("Content-Length: %d\r\nAccept-Ranges: bytes\r\n", len(fs.data)), fs.data[:half])
	case fs.mode == "ignore-range":
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Content-Length", fmt.Sprint(len(fs.data)))
		w.Write(fs.data)
	case fs.mode == "change":
		w.Header().Set("ETag", `"v2"`)
		http.ServeContent(w, r, "", fs.modTime, bytes.NewReader(fs.data))
	default:
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, r, "", fs.modTime, bytes.NewReader(fs.data))
	}
}

// hijack writes a raw response (status 200, or 206 for range requests)
// with the given headers and body, then closes the connection: a drop.
func (fs *flakyServer) hijack(w http.ResponseWriter, hdr string, body []byte) {
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	status := "200 OK"
	if strings.Contains(hdr, "Content-Range") {
		status = "206 Partial Content"
	}
	fmt.Fprintf(buf, "HTTP/1.1 %s\r\nETag: \"v1\"\r\n%s\r\n", status, hdr)
	buf.Write(body)
	buf.Flush()
}

// stall sends half the file and then waits for the client to go away.
func (fs *flakyServer) stall(w http.ResponseWriter, half int) {
	w.Header().Set("Content-Length", fmt.Sprint(len(fs.data)))
	w.Write(fs.data[:half])
	w.(http.Flusher).Flush()
	select {
	case <-fs.stop:
	case <-time.After(10 * time.Second):
	}
}

// readAll opens src and reads the whole stream.
func readAll(t *testing.T, ctx context.Context, src Source) (*Stream, []byte, error) {
	t.Helper()
	st, err := src.Open(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer st.Body.Close()
	got, err := io.ReadAll(st.Body)
	return st, got, err
}

func TestHTTPResume(t *testing.T) {
	data := testData(256 << 10)
	half := len(data) / 2
	tests := []struct {
		mode      string
		wantErr   error
		wantRange string // Range header of the second request
		wantMsg   string // in an OnRetry message
		wantSize  int64  // Stream.Size when not the length of data
	}{
		{mode: "drop", wantRange: fmt.Sprintf("bytes=%d-", half), wantMsg: "connection dropped at 128.0KiB of 256.0KiB, resuming with Range"},
		{mode: "ignore-range", wantRange: fmt.Sprintf("bytes=%d-", half), wantMsg: "ignored Range"},
		{mode: "change", wantErr: ErrSourceChanged},
		{mode: "always-drop", wantErr: ErrTransfer, wantMsg: "attempt 3 of 3"},
		{mode: "chunked-drop", wantErr: ErrTransfer},
		{mode: "chunked-ranges", wantSize: -1, wantRange: fmt.Sprintf("bytes=%d-", half), wantMsg: "of unknown total"},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			fs, srv := newFlaky(t, data, tc.mode)
			var msgs []string
			src, err := Parse(srv.URL+"/img/disk.qcow2", Options{Retries: 3, OnRetry: func(m string) { msgs = append(msgs, m) }})
			if err != nil {
				t.Fatal(err)
			}
			st, got, err := readAll(t, context.Background(), src)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error = %v, want %v", err, tc.wantErr)
				}
				t.Logf("error: %v", err)
			} else if err != nil {
				t.Fatalf("read: %v", err)
			} else if sum(got) != sum(data) || st.Size != cmp.Or(tc.wantSize, int64(len(data))) || st.Name != "disk.qcow2" {
				t.Fatalf("got %d bytes (sum match %v), size %d, name %q", len(got), sum(got) == sum(data), st.Size, st.Name)
			}
			reqs := fs.requests()
			if tc.wantRange != "" && (len(reqs) < 2 || reqs[0] != "" || reqs[1] != tc.wantRange) {
				t.Errorf("requests' Range headers = %q, want [\"\" %q]", reqs, tc.wantRange)
			}
			if tc.wantMsg != "" && !strings.Contains(strings.Join(msgs, "\n"), tc.wantMsg) {
				t.Errorf("OnRetry messages %q lack %q", msgs, tc.wantMsg)
			}
		})
	}
}

func TestHTTPCancel(t *testing.T) {
	data := testData(64 << 10)
	_, srv := newFlaky(t, data, "stall")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src, err := Parse(srv.URL+"/disk.img", Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := src.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Body.Close()
	if _, err := io.ReadFull(st.Body, make([]byte, len(data)/2)); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(50*time.Millisecond, cancel)
	done := make(chan error, 1)
	go func() { _, err := io.ReadAll(st.Body); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read did not return after cancel")
	}
}

func TestHTTP(t *testing.T) {
	data := testData(100 << 10)
	mux := http.NewServeMux()
	mux.HandleFunc("/images/ubuntu.qcow2", func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	})
	mux.Handle("/old", http.RedirectHandler("/images/ubuntu.qcow2", http.StatusFound))
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < len(data); i += 10 << 10 {
			w.Write(data[i:min(i+10<<10, len(data))])
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/download", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Disposition", `attachment; filename="../../evil.img"`)
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		w.Write(data)
	})
	mux.HandleFunc("/encoded", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Disposition", `attachment; filename*=UTF-8''my%20disk%0A.qcow2`)
		w.Write(data)
	})
	mux.HandleFunc("/private", func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); ok && u == "alice" && p == "s3cret" {
			w.Header().Set("Content-Length", fmt.Sprint(len(data)))
			w.Write(data)
			return
		}
		http.Error(w, "no", http.StatusUnauthorized)
	})
	mux.HandleFunc("/forbidden", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusForbidden) })
	mux.HandleFunc("/broken", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "oops", http.StatusInternalServerError) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	tests := []struct {
		name     string
		url      string
		wantName string
		wantSize int64
		wantErr  error
		wantMsg  string
	}{
		{name: "plain", url: srv.URL + "/images/ubuntu.qcow2", wantName: "ubuntu.qcow2", wantSize: int64(len(data))},
		{name: "redirect", url: srv.URL + "/old", wantName: "ubuntu.qcow2", wantSize: int64(len(data))},
		{name: "chunked", url: srv.URL + "/chunked", wantName: "chunked", wantSize: -1},
		{name: "content-disposition", url: srv.URL + "/download", wantName: "evil.img", wantSize: int64(len(data))},
		{name: "content-disposition encoded", url: srv.URL + "/encoded", wantName: "my disk.qcow2", wantSize: -1},
		{name: "basic auth", url: "http://alice:s3cret@" + host + "/private", wantName: "private", wantSize: int64(len(data))},
		{name: "404", url: srv.URL + "/missing.img", wantErr: ErrNotFound, wantMsg: "404 Not Found"},
		{name: "401", url: srv.URL + "/private", wantErr: ErrUnauthorized, wantMsg: "401"},
		{name: "401 wrong password", url: "http://alice:wrong@" + host + "/private", wantErr: ErrUnauthorized},
		{name: "403", url: srv.URL + "/forbidden", wantErr: ErrUnauthorized, wantMsg: "403"},
		{name: "500", url: srv.URL + "/broken", wantMsg: "500 Internal Server Error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, err := Parse(tc.url, Options{})
			if err != nil {
				t.Fatal(err)
			}
			st, got, err := readAll(t, context.Background(), src)
			if tc.wantErr != nil || tc.wantMsg != "" {
				checkErr(t, err, tc.wantErr, tc.wantMsg)
				if err != nil && (!strings.Contains(err.Error(), srv.URL) || strings.Contains(err.Error(), "wrong")) {
					t.Errorf("error should name the URL without credentials: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sum(got) != sum(data) || st.Size != tc.wantSize || st.Name != tc.wantName {
				t.Errorf("got %d bytes, size %d, name %q; want %d bytes, size %d, name %q",
					len(got), st.Size, st.Name, len(data), tc.wantSize, tc.wantName)
			}
		})
	}
}

func TestHTTPS(t *testing.T) {
	data := testData(10 << 10)
	ca := testca.New(t)
	srv := ca.StartTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(data) }))
	tests := []struct {
		name    string
		opts    Options
		wantMsg string
	}{
		{name: "custom CA", opts: Options{CABundle: ca.PEM}},
		{name: "without CA", wantMsg: "certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, err := Parse(srv.URL+"/a/disk.raw", tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			st, got, err := readAll(t, context.Background(), src)
			if tc.wantMsg != "" {
				checkErr(t, err, nil, tc.wantMsg)
				return
			}
			if err != nil || sum(got) != sum(data) || st.Name != "disk.raw" {
				t.Fatalf("err %v, %d bytes, name %q", err, len(got), st.Name)
			}
		})
	}
}

func checkErr(t *testing.T, err, want error, msg string) {
	t.Helper()
	switch {
	case err == nil:
		t.Fatalf("no error, want %v %q", want, msg)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("error = %v, want errors.Is %v", err, want)
	case !strings.Contains(err.Error(), msg):
		t.Fatalf("error = %v, want it to contain %q", err, msg)
	}
	t.Logf("error: %v", err)
}
