package upload

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestNewToken(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		tok, err := NewToken()
		if err != nil {
			t.Fatal(err)
		}
		if len(tok) != 32 || !validToken(tok) {
			t.Fatalf("token %d has length %d or foreign characters", i, len(tok))
		}
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil || len(raw)*8 < 128 {
			t.Fatalf("token %d carries %d bits (%v)", i, len(raw)*8, err)
		}
		if seen[tok] {
			t.Fatalf("token %d repeats an earlier one", i)
		}
		seen[tok] = true
	}
}

func TestValidToken(t *testing.T) {
	tests := []struct {
		tok  string
		want bool
	}{
		{strings.Repeat("a", 22), true},
		{strings.Repeat("A0_-", 8), true},
		{strings.Repeat("a", 21), false},
		{strings.Repeat("a", 129), false},
		{strings.Repeat("a", 30) + "/x", false},
		{strings.Repeat("a", 30) + ".", false},
		{strings.Repeat("a", 30) + "%2F", false},
		{"", false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%q", tc.tok), func(t *testing.T) {
			if got := validToken(tc.tok); got != tc.want {
				t.Fatalf("validToken = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		h       string
		want    *contentRange
		wantErr bool
	}{
		{h: "", want: nil},
		{h: "bytes 0-99/100", want: &contentRange{0, 99, 100}},
		{h: "bytes 1000-2999999/3000000", want: &contentRange{1000, 2999999, 3000000}},
		{h: "bytes 10-19/*", want: &contentRange{10, 19, -1}},
		{h: "bytes */500", want: &contentRange{500, 499, 500}},
		{h: "bytes 1000-998/999", want: &contentRange{1000, -1, -1}}, // curl -C 1000 -T -
		{h: "bytes 1--1/0", want: &contentRange{1, -1, -1}},          // curl -C 1 -T -
		{h: "bytes 0-99/50", wantErr: true},
		{h: "bytes 10-5/100", wantErr: true},
		{h: "bytes */*", wantErr: true},
		{h: "bytes 0-99", wantErr: true},
		{h: "bytes -5-10/20", wantErr: true},
		{h: "items 0-9/10", wantErr: true},
		{h: "bytes a-b/c", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.h, func(t *testing.T) {
			got, err := parseContentRange(tc.h)
			if tc.wantErr {
				if !errors.Is(err, errBadRange) {
					t.Fatalf("err %v, want errBadRange", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestTokenNeverLeaks drives the handler through its outcomes and checks
// that the token is in no log line, response header or body, and not in
// the spool file's name.
func TestTokenNeverLeaks(t *testing.T) {
	var readOnly atomic.Bool
	e := newEnv(t, Options{ReadOnly: readOnly.Load, IdleTimeout: 200 * time.Millisecond})
	token, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	// The receiver's message quotes the token; the handler must not.
	recv := &fakeReceiver{err: fmt.Errorf("%w: bad image at /upload/%s", ErrRefused, token)}
	e.h.Register(token, recv)
	url := e.srv.URL + "/upload/" + token
	data := make([]byte, 5000)

	conn := rawUpload(t, e.srv.URL, token, data, 2500, false)
	_ = conn.Close()
	waitOffset(t, url, 2500)
	for _, f := range e.spoolFiles(t) {
		if strings.Contains(f, token) || f != filepath.Base(spoolPath(e.spool, token)) {
			t.Fatalf("spool file %q", f)
		}
	}
	check := func(st int, hdr http.Header, body string) {
		t.Helper()
		all := body + fmt.Sprint(hdr)
		if strings.Contains(all, token) {
			t.Fatalf("the token is in an answer (%d)", st)
		}
	}
	check(do(t, "GET", url, nil, nil))
	check(do(t, "PUT", url, data[:3], map[string]string{"Content-Range": "bytes 7-9/10"}))      // 416
	check(do(t, "PUT", url, data[:100], map[string]string{"Content-Range": "bytes 0-99/5000"})) // 416
	check(do(t, "PUT", url, data, nil))                                                         // 422 quoting the token
	readOnly.Store(true)
	check(do(t, "PUT", url, data, nil))
	readOnly.Store(false)
	check(do(t, "DELETE", url, nil, nil))
	e.h.Unregister(token)
	check(do(t, "PUT", url, data, nil))
	e.h.Register("not a token!", recv)
	log := e.logText()
	if strings.Contains(log, token) || !strings.Contains(log, fingerprint(token)) {
		t.Fatalf("log holds the token or lacks its fingerprint:\n%s", log)
	}
	if len(recv.uploads()) != 1 {
		t.Fatal("the receiver was not called once")
	}
}

// TestSweep removes the spool files of tokens not registered.
func TestSweep(t *testing.T) {
	e := newEnv(t, Options{})
	live, url := e.register(t, &fakeReceiver{})
	conn := rawUpload(t, e.srv.URL, live, make([]byte, 100), 50, false)
	_ = conn.Close()
	waitOffset(t, url, 50)
	stale, _ := NewToken()
	if err := os.WriteFile(spoolPath(e.spool, stale), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(e.spool, "unrelated")
	if err := os.WriteFile(other, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := e.h.Sweep()
	if err != nil || n != 1 {
		t.Fatalf("Sweep: %d, %v; want 1 removed", n, err)
	}
	if spoolSize(spoolPath(e.spool, live)) != 50 {
		t.Fatal("Sweep removed a registered token's bytes")
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatal("Sweep removed a file that is not a spool file")
	}
}

func TestNewHandlerSpoolDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	if _, err := NewHandler(Options{SpoolDir: dir}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("spool dir: %v %v, want mode 0700", st.Mode(), err)
	}
	if _, err := NewHandler(Options{}); !errors.Is(err, ErrSpoolDir) {
		t.Fatalf("no SpoolDir: %v, want ErrSpoolDir", err)
	}
	file := filepath.Join(t.TempDir(), "f")
	_ = os.WriteFile(file, nil, 0o600)
	if _, err := NewHandler(Options{SpoolDir: file}); !errors.Is(err, ErrSpoolDir) {
		t.Fatalf("SpoolDir is a file: %v, want ErrSpoolDir", err)
	}
}

func TestUploadName(t *testing.T) {
	tests := []struct{ query, disposition, want string }{
		{"", "", "disk.img"},
		{"name=a.qcow2", "", "a.qcow2"},
		{"name=..%2F..%2Fetc%2Fpasswd", "", "passwd"},
		{"name=..", "", "disk.img"},
		{"name=a%0Ab.iso", "", "ab.iso"},
		{"", `attachment; filename="C:\dir\win.vmdk"`, "win.vmdk"},
		{"name=q.raw", `attachment; filename="cd.iso"`, "q.raw"},
	}
	for _, tc := range tests {
		t.Run(tc.query+tc.disposition, func(t *testing.T) {
			r, _ := http.NewRequest("PUT", "http://h/upload/x?"+tc.query, nil)
			if tc.disposition != "" {
				r.Header.Set("Content-Disposition", tc.disposition)
			}
			if got := uploadName(r); got != tc.want {
				t.Fatalf("uploadName = %q, want %q", got, tc.want)
			}
		})
	}
}
