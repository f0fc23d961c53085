package console

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestDownloadRaw drives GET /api/download/cvi/NAME?format=raw against a
// real dvcr serve: conversions equal to qemu-img's, refusals with their
// reason, no temporary file left whatever the client does, the
// conversions bounded, and the served file streamed, not held.
func TestDownloadRaw(t *testing.T) {
	fx := newRawFixture(t)
	t.Run("answers", func(t *testing.T) { testRawAnswers(t, fx) })
	t.Run("client gone mid-body", func(t *testing.T) { testRawDisconnectMidBody(t, fx) })
	t.Run("client gone mid-conversion", func(t *testing.T) { testRawDisconnectMidConversion(t, fx) })
	t.Run("conversions bounded", func(t *testing.T) { testRawConversionsBounded(t, fx) })
	t.Run("1 GiB streamed", func(t *testing.T) { testRawStreams(t, fx) })
}

// rawAnswer is what a download request should get.
type rawAnswer struct {
	code      int
	file      string // Content-Disposition's filename; "" for an error
	body      []byte // of a file
	length    int64  // Content-Length of a file; -1 for none
	converted bool   // served from a converted file (ServeContent: ETag, Accept-Ranges)
	text      string // in the body of an error
}

func testRawAnswers(t *testing.T, fx *rawFixture) {
	c := newRawConsole(t, fx, fx.registry, 0)
	qcow, plain, stored := readFile(t, fx.ref["qcow"]), readFile(t, fx.files["plain"]), readFile(t, fx.files["qcow"])
	file := func(name string, b []byte, converted bool) rawAnswer {
		return rawAnswer{code: http.StatusOK, file: name, body: b, length: int64(len(b)), converted: converted}
	}
	ranged := file("qcow.raw", qcow[4000000:], true)
	ranged.code = http.StatusPartialContent
	decompressed := file("plainz.raw", plain, false)
	decompressed.length = -1 // known at the end only
	tests := []struct {
		name   string
		path   string
		header []string
		want   rawAnswer
	}{
		{"qcow2 as qemu-img converts it", "qcow?format=raw", nil, file("qcow.raw", qcow, true)},
		{"vmdk as qemu-img converts it", "vmdk?format=raw", nil, file("vmdk.raw", readFile(t, fx.ref["vmdk"]), true)},
		{"vdi as qemu-img converts it", "vdi?format=raw", nil, file("vdi.raw", readFile(t, fx.ref["vdi"]), true)},
		{"a range of the qcow2's, as a resumed download asks", "qcow?format=raw", []string{"Range", "bytes=4000000-"}, ranged},
		{"qcow2 as stored without format", "qcow", nil, file("qcow.qcow2", stored, false)},
		{"raw image as stored", "plain?format=raw", nil, file("plain.raw", plain, false)},
		{"compressed raw image decompressed", "plainz?format=raw", nil, decompressed},
		{"compressed qcow2 refused", "packed?format=raw", nil, rawAnswer{code: http.StatusUnprocessableEntity, text: "gzip compressed"}},
		{"iso refused", "cd?format=raw", nil, rawAnswer{code: http.StatusUnprocessableEntity, text: "converting iso is not supported"}},
		{"unknown format", "qcow?format=vhd", nil, rawAnswer{code: http.StatusBadRequest, text: "want raw, or none"}},
		{"missing image", "gone?format=raw", nil, rawAnswer{code: http.StatusNotFound, text: "not found"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := get(t, context.Background(), c.URL+"/api/download/cvi/"+tt.path, tt.header...)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.want.code {
				t.Fatalf("HTTP %d %.300s, want %d", resp.StatusCode, body, tt.want.code)
			}
			tt.want.check(t, resp, body)
			c.settle(t)
		})
	}
}

func (want rawAnswer) check(t *testing.T, resp *http.Response, body []byte) {
	t.Helper()
	disposition := resp.Header.Get("Content-Disposition")
	if want.file == "" {
		if disposition != "" || !strings.Contains(string(body), want.text) {
			t.Errorf("Content-Disposition %q, body %s; want none and %q", disposition, body, want.text)
		}
		t.Logf("%s", body)
		return
	}
	if w := "attachment; filename=" + want.file; disposition != w {
		t.Errorf("Content-Disposition %q, want %q", disposition, w)
	}
	if resp.ContentLength != want.length || !bytes.Equal(body, want.body) {
		t.Errorf("Content-Length %d and %d bytes with sha256 %x; want %d and %d bytes with %x",
			resp.ContentLength, len(body), sha256.Sum256(body), want.length, len(want.body), sha256.Sum256(want.body))
	}
	if got := resp.Header.Get("ETag") != "" && resp.Header.Get("Accept-Ranges") == "bytes"; got != want.converted {
		t.Errorf("ETag %q, Accept-Ranges %q: served from a converted file %v, want %v",
			resp.Header.Get("ETag"), resp.Header.Get("Accept-Ranges"), got, want.converted)
	}
}

// testRawDisconnectMidBody: a client that reads 1 MiB and goes leaves
// neither the file nor an open descriptor of it.
func testRawDisconnectMidBody(t *testing.T, fx *rawFixture) {
	c := newRawConsole(t, fx, fx.registry, 0)
	resp, err := get(t, context.Background(), c.URL+"/api/download/cvi/qcow?format=raw")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d", resp.StatusCode)
	}
	if _, err := io.CopyN(io.Discard, resp.Body, 1<<20); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c.settle(t)
}

// testRawDisconnectMidConversion: a client that goes while the console
// converts (the registry holds the blobs) stops the conversion and leaves
// no file.
func testRawDisconnectMidConversion(t *testing.T, fx *rawFixture) {
	g := newGate(t, fx.registry)
	c := newRawConsole(t, fx, g.url, 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		resp, err := get(t, ctx, c.URL+"/api/download/cvi/qcow?format=raw")
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	g.waitHeld(t, 1)
	if files, _ := os.ReadDir(c.dir); len(files) != 1 {
		t.Errorf("%d files in the download directory during the conversion, want 1", len(files))
	}
	cancel()
	if err := <-done; err == nil {
		t.Error("the request succeeded although cancelled")
	}
	c.settle(t)
}

// testRawConversionsBounded: with 2 conversions allowed, a third download
// waits (no file of its own) until one ends, then all three complete.
func testRawConversionsBounded(t *testing.T, fx *rawFixture) {
	g := newGate(t, fx.registry)
	c := newRawConsole(t, fx, g.url, 2)
	want := sha256.Sum256(readFile(t, fx.ref["qcow"]))
	results := make(chan string, 3)
	for range 3 {
		go func() {
			resp, err := get(t, context.Background(), c.URL+"/api/download/cvi/qcow?format=raw")
			if err != nil {
				results <- err.Error()
				return
			}
			defer resp.Body.Close()
			h := sha256.New()
			_, err = io.Copy(h, resp.Body)
			if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(h.Sum(nil), want[:]) {
				results <- "HTTP " + strconv.Itoa(resp.StatusCode) + ", wrong or short body"
				return
			}
			results <- ""
		}()
	}
	g.waitHeld(t, 2)
	time.Sleep(300 * time.Millisecond) // the third would have started by now
	if files, _ := os.ReadDir(c.dir); len(files) != 2 || g.held.Load() != 2 {
		t.Errorf("%d files in the download directory and %d conversions reading, want 2 and 2", len(files), g.held.Load())
	}
	g.release()
	for range 3 {
		if msg := <-results; msg != "" {
			t.Error(msg)
		}
	}
	c.settle(t)
}

// testRawStreams: a 1 GiB raw disk comes through with the heap bounded:
// the converted file is served from disk, not read into memory.
func testRawStreams(t *testing.T, fx *rawFixture) {
	c := newRawConsole(t, fx, fx.registry, 0)
	ref, err := os.Open(fx.ref["big"])
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	base := heapInUse()
	resp, err := get(t, context.Background(), c.URL+"/api/download/cvi/big?format=raw")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != 1<<30 {
		t.Fatalf("HTTP %d, Content-Length %d", resp.StatusCode, resp.ContentLength)
	}
	peak := max(base, heapInUse()) // after the conversion
	a, b := make([]byte, 1<<20), make([]byte, 1<<20)
	var got int64
	for {
		n, err := io.ReadFull(resp.Body, a)
		if _, rerr := io.ReadFull(ref, b[:n]); rerr != nil || !bytes.Equal(a[:n], b[:n]) {
			t.Fatalf("the download differs from qemu-img's in the MiB at %d", got)
		}
		if got += int64(n); got%(128<<20) == 0 {
			peak = max(peak, heapInUse())
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
	}
	if got != 1<<30 {
		t.Fatalf("received %d bytes, want 1 GiB", got)
	}
	if peak > base+64<<20 {
		t.Errorf("heap in use grew from %d MiB to %d MiB", base>>20, peak>>20)
	}
	t.Logf("heap in use: %d MiB before, %d MiB at most", base>>20, peak>>20)
	resp.Body.Close()
	c.settle(t)
}

// gate is a proxy to the registry that holds every blob request until
// release: the conversions behind it stand still.
type gate struct {
	url  string
	open chan struct{}
	once sync.Once
	held atomic.Int64 // blob requests that arrived while closed
}

func newGate(t *testing.T, registry string) *gate {
	t.Helper()
	target, err := url.Parse(registry)
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{open: make(chan struct{})}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/blobs/") {
			select {
			case <-g.open:
			default:
				g.held.Add(1)
				select {
				case <-g.open:
				case <-r.Context().Done():
					return
				}
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(g.release)
	g.url = srv.URL
	return g
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

// waitHeld waits until n blob requests are held.
func (g *gate) waitHeld(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for g.held.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d blob requests held after 30s, want %d", g.held.Load(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
