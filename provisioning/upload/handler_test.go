package upload

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestStatusCodes checks the answers that need no body transfer.
func TestStatusCodes(t *testing.T) {
	var readOnly atomic.Bool
	e := newEnv(t, Options{ReadOnly: readOnly.Load, RetryAfter: 1500 * time.Millisecond})
	recv := &fakeReceiver{}
	token, url := e.register(t, recv)
	unknown, _ := NewToken()
	body := []byte("0123456789")

	tests := []struct {
		name      string
		readOnly  bool
		method    string
		url       string
		body      []byte
		hdr       map[string]string
		want      int
		wantHdr   map[string]string
		wantInMsg string
	}{
		{name: "GET ready", method: "GET", url: url, want: 200, wantHdr: map[string]string{"Upload-Offset": "0"}, wantInMsg: "ready"},
		{name: "HEAD ready", method: "HEAD", url: url, want: 200, wantHdr: map[string]string{"Upload-Offset": "0"}},
		{name: "GET unknown token", method: "GET", url: e.srv.URL + "/upload/" + unknown, want: 404, wantInMsg: "unknown or expired"},
		{name: "PUT unknown token", method: "PUT", url: e.srv.URL + "/upload/" + unknown, body: body, want: 404},
		{name: "token too short", method: "GET", url: e.srv.URL + "/upload/abc", want: 404},
		{name: "further segment", method: "PUT", url: url + "/disk.img", body: body, want: 404},
		{name: "bad characters", method: "GET", url: e.srv.URL + "/upload/" + strings.Repeat("a", 30) + "%21", want: 404},
		{name: "DELETE", method: "DELETE", url: url, want: 405, wantHdr: map[string]string{"Allow": "GET, HEAD, PUT, POST"}},
		{name: "PATCH", method: "PATCH", url: url, body: body, want: 405, wantHdr: map[string]string{"Allow": "GET, HEAD, PUT, POST"}},
		{name: "PUT read-only", readOnly: true, method: "PUT", url: url, body: body, want: 503,
			wantHdr: map[string]string{"Retry-After": "2"}, wantInMsg: "garbage collection"},
		{name: "POST read-only", readOnly: true, method: "POST", url: url, body: body, want: 503, wantHdr: map[string]string{"Retry-After": "2"}},
		{name: "GET while read-only", readOnly: true, method: "GET", url: url, want: 200},
		{name: "offset beyond kept", method: "PUT", url: url, body: body,
			hdr: map[string]string{"Content-Range": "bytes 5-14/15"}, want: 416,
			wantHdr: map[string]string{"Upload-Offset": "0", "Content-Range": "bytes */0"}, wantInMsg: "resume from 0"},
		{name: "malformed Content-Range", method: "PUT", url: url, body: body,
			hdr: map[string]string{"Content-Range": "items 0-9/10"}, want: 400, wantInMsg: "Content-Range"},
		{name: "Content-Length disagrees with the range", method: "PUT", url: url, body: body,
			hdr: map[string]string{"Content-Range": "bytes 0-19/20"}, want: 400, wantInMsg: "Content-Length 10"},
		{name: "finish with nothing kept", method: "PUT", url: url,
			hdr: map[string]string{"Content-Range": "bytes */10"}, want: 416, wantHdr: map[string]string{"Upload-Offset": "0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			readOnly.Store(tc.readOnly)
			st, hdr, msg := do(t, tc.method, tc.url, tc.body, tc.hdr)
			if st != tc.want {
				t.Fatalf("status %d (%q), want %d", st, msg, tc.want)
			}
			for k, v := range tc.wantHdr {
				if hdr.Get(k) != v {
					t.Fatalf("%s: %q, want %q", k, hdr.Get(k), v)
				}
			}
			if !strings.Contains(msg, tc.wantInMsg) {
				t.Fatalf("body %q, want it to contain %q", msg, tc.wantInMsg)
			}
			if strings.Contains(msg, token) || strings.Contains(msg, unknown) {
				t.Fatal("a token is echoed in the body")
			}
		})
	}
	if len(recv.uploads()) != 0 {
		t.Fatal("the receiver was called")
	}
}

// TestChunkedRanges uploads a file in Content-Range pieces (202 until the
// total is reached), then checks the Receiver got it whole.
func TestChunkedRanges(t *testing.T) {
	e := newEnv(t, Options{})
	_, data := randomFile(t, 100_000)
	recv := &fakeReceiver{}
	_, url := e.register(t, recv)
	steps := []struct{ from, to, want int }{{0, 40_000, 202}, {40_000, 99_999, 202}, {99_999, 100_000, 201}}
	for _, s := range steps {
		cr := fmt.Sprintf("bytes %d-%d/%d", s.from, s.to-1, len(data))
		st, hdr, msg := do(t, http.MethodPut, url, data[s.from:s.to], map[string]string{"Content-Range": cr})
		if st != s.want {
			t.Fatalf("%s: %d %q, want %d", cr, st, msg, s.want)
		}
		if st == 202 && hdr.Get("Upload-Offset") != strconv.Itoa(s.to) {
			t.Fatalf("%s: Upload-Offset %q", cr, hdr.Get("Upload-Offset"))
		}
	}
	checkGot(t, recv, data, "disk.img")
}

// TestReceiveErrors: the Receiver's error picks the status; the spool file
// is kept only after a 503, and a bodyless "bytes */TOTAL" PUT retries.
func TestReceiveErrors(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		want     int
		wantKept bool
	}{
		{"refused image", fmt.Errorf("%w: not a disk image", ErrRefused), 422, false},
		{"registry read-only", fmt.Errorf("import: %w", ErrUnavailable), 503, true},
		{"explicit status", WithStatus(errors.New("too large"), 413), 413, false},
		{"other failure", errors.New("boom"), 500, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Options{RetryAfter: 3 * time.Second})
			_, data := randomFile(t, 50_000)
			recv := &fakeReceiver{err: tc.err}
			token, url := e.register(t, recv)
			st, hdr, msg := do(t, http.MethodPut, url, data, nil)
			if st != tc.want || !strings.Contains(msg, tc.err.Error()) {
				t.Fatalf("%d %q, want %d with the receiver's message", st, msg, tc.want)
			}
			kept := spoolSize(spoolPath(e.spool, token))
			if tc.wantKept != (kept == int64(len(data))) {
				t.Fatalf("spool holds %d bytes, kept=%v wanted", kept, tc.wantKept)
			}
			if !tc.wantKept {
				if files := e.spoolFiles(t); len(files) != 0 {
					t.Fatalf("spool files left: %v", files)
				}
				return
			}
			if hdr.Get("Retry-After") != "3" {
				t.Fatalf("Retry-After %q", hdr.Get("Retry-After"))
			}
			if off := waitReady(t, url); off != strconv.Itoa(len(data)) {
				t.Fatalf("Upload-Offset %q after 503", off)
			}
			recv.mu.Lock()
			recv.err = nil
			recv.mu.Unlock()
			cr := fmt.Sprintf("bytes */%d", len(data))
			if st, _, msg := do(t, http.MethodPut, url, nil, map[string]string{"Content-Range": cr}); st != 201 {
				t.Fatalf("retry with %s: %d %q", cr, st, msg)
			}
			if got := recv.uploads(); len(got) != 2 || got[1].size != int64(len(data)) {
				t.Fatalf("receiver got %d uploads", len(got))
			}
		})
	}
}

// TestUnregister: 404 after Unregister, also for an upload cancelled
// while its body streams or while it is being received.
func TestUnregister(t *testing.T) {
	t.Run("before", func(t *testing.T) {
		e := newEnv(t, Options{})
		token, url := e.register(t, &fakeReceiver{})
		conn := rawUpload(t, e.srv.URL, token, make([]byte, 1000), 500, false)
		_ = conn.Close()
		waitOffset(t, url, 500)
		e.h.Unregister(token)
		if st, _, _ := do(t, http.MethodPut, url, []byte("x"), nil); st != 404 {
			t.Fatalf("PUT after Unregister: %d, want 404", st)
		}
		if files := e.spoolFiles(t); len(files) != 0 {
			t.Fatalf("spool files left: %v", files)
		}
	})
	t.Run("while the body streams", func(t *testing.T) {
		e := newEnv(t, Options{})
		token, url := e.register(t, &fakeReceiver{})
		conn := rawUpload(t, e.srv.URL, token, make([]byte, 1<<20), 4096, false)
		defer conn.Close()
		waitRunning(t, url, 4096)
		e.h.Unregister(token)
		if st, msg := readResponse(t, conn); st != 404 || !strings.Contains(msg, "cancelled") {
			t.Fatalf("stalled upload after Unregister: %d %q, want 404", st, msg)
		}
		waitNoFiles(t, e)
	})
	t.Run("while received", func(t *testing.T) {
		e := newEnv(t, Options{})
		recv := &fakeReceiver{block: make(chan struct{}), entered: make(chan struct{}, 1)}
		token, url := e.register(t, recv)
		res := make(chan int, 1)
		go func() {
			st, _, _ := do(t, http.MethodPut, url, make([]byte, 1000), nil)
			res <- st
		}()
		<-recv.entered
		e.h.Unregister(token)
		if st := <-res; st != 404 {
			t.Fatalf("upload unregistered during Receive: %d, want 404", st)
		}
		recv.mu.Lock()
		ctxErr := recv.ctxErr
		recv.mu.Unlock()
		if ctxErr == nil {
			t.Fatal("the receiver's context was not cancelled")
		}
		waitNoFiles(t, e)
	})
}

func waitNoFiles(t *testing.T, e *env) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		files := e.spoolFiles(t)
		if len(files) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("spool files left: %v", files)
		}
	}
}

// TestConflict: GET and a second PUT while an upload's body streams get 409.
func TestConflict(t *testing.T) {
	e := newEnv(t, Options{})
	_, data := randomFile(t, 10_000)
	recv := &fakeReceiver{}
	token, url := e.register(t, recv)
	conn := rawUpload(t, e.srv.URL, token, data, 3000, false)
	waitRunning(t, url, 3000)
	if st, _, msg := do(t, http.MethodPut, url, data, nil); st != 409 {
		t.Fatalf("second PUT: %d %q, want 409", st, msg)
	}
	if _, err := conn.Write(data[3000:]); err != nil {
		t.Fatal(err)
	}
	if st, msg := readResponse(t, conn); st != 201 {
		t.Fatalf("first upload: %d %q", st, msg)
	}
	_ = conn.Close()
	checkGot(t, recv, data, "disk.img")
}

// TestIdleTimeout: a client that stops sending is cut off; its bytes stay.
func TestIdleTimeout(t *testing.T) {
	e := newEnv(t, Options{IdleTimeout: 300 * time.Millisecond})
	token, url := e.register(t, &fakeReceiver{})
	conn := rawUpload(t, e.srv.URL, token, make([]byte, 5000), 1234, false)
	defer conn.Close()
	if st, msg := readResponse(t, conn); st != 400 || !strings.Contains(msg, "1234 bytes kept") {
		t.Fatalf("stalled upload: %d %q, want 400 with the bytes kept", st, msg)
	}
	waitOffset(t, url, 1234)
}

// TestDiskFull: a spool file that cannot grow (here /dev/full) gives 507
// saying the storage is full and naming the spool directory; the bytes
// received are released at once (Upload-Offset 0, no spool file).
func TestDiskFull(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	e := newEnv(t, Options{})
	token, url := e.register(t, &fakeReceiver{})
	if err := os.Symlink("/dev/full", spoolPath(e.spool, token)); err != nil {
		t.Fatal(err)
	}
	st, hdr, msg := do(t, http.MethodPut, url, make([]byte, 100), map[string]string{"Content-Range": "bytes 0-99/100"})
	if st != http.StatusInsufficientStorage || !strings.Contains(msg, e.spool) || !strings.HasPrefix(msg, "DVCR storage is full: ") {
		t.Fatalf("%d %q, want 507 saying the storage is full, naming %s", st, msg, e.spool)
	}
	if off := hdr.Get("Upload-Offset"); off != "0" {
		t.Errorf("Upload-Offset %q, want 0", off)
	}
	if _, err := os.Lstat(spoolPath(e.spool, token)); !os.IsNotExist(err) {
		t.Errorf("spool file kept: %v", err)
	}
}

// TestStatusNeverBlocksAnUpload: GETs polling the offset while the chunks
// of an upload arrive never make a chunk fail with 409 (a GET used to hold
// the upload's lock for a moment).
func TestStatusNeverBlocksAnUpload(t *testing.T) {
	e := newEnv(t, Options{})
	const chunk, chunks = 4 << 10, 200
	_, data := randomFile(t, chunk*chunks)
	recv := &fakeReceiver{}
	_, url := e.register(t, recv)
	stop := make(chan struct{})
	polled := make(chan int)
	go func() {
		n := 0
		defer func() { polled <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			switch st, _, _ := do(t, http.MethodGet, url, nil, nil); st {
			case http.StatusOK, http.StatusConflict:
			case http.StatusNotFound: // the upload completed
				return
			default:
				t.Errorf("GET: %d", st)
				return
			}
			n++
		}
	}()
	for i := range chunks {
		first, last := i*chunk, (i+1)*chunk-1
		hdr := map[string]string{"Content-Range": fmt.Sprintf("bytes %d-%d/%d", first, last, len(data))}
		st, _, body := do(t, http.MethodPut, url, data[first:last+1], hdr)
		if want := map[bool]int{true: http.StatusCreated, false: http.StatusAccepted}[i == chunks-1]; st != want {
			close(stop)
			<-polled
			t.Fatalf("chunk %d: %d %q, want %d", i, st, body, want)
		}
	}
	close(stop)
	if n := <-polled; n < chunks {
		t.Logf("only %d GETs raced %d chunks", n, chunks)
	}
	checkGot(t, recv, data, "disk.img")
}
