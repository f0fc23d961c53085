package node

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"
)

// diskServer serves one raw disk image of size bytes at /disk.img from inside
// the cluster's namespace, at rate bytes per second, so that an import lasts
// long enough to be watched. Its bytes are a function of their offset, so
// the server holds nothing in memory and answers Range requests.
type diskServer struct {
	URL  string
	size int64
}

func newDiskServer(t *testing.T, size, rate int64) *diskServer {
	t.Helper()
	ln := listenInNode(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/disk.img", func(w http.ResponseWriter, r *http.Request) {
		content := &offsetBytes{size: size}
		http.ServeContent(&throttled{ResponseWriter: w, rate: rate, start: time.Now()}, r, "disk.img", time.Unix(0, 0), content)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	t.Cleanup(func() { srv.Close() })
	return &diskServer{URL: "http://" + ln.Addr().String() + "/disk.img", size: size}
}

// offsetBytes is an io.ReadSeeker over size bytes whose every 32-byte block
// is the SHA-256 of its index: incompressible and never stored.
type offsetBytes struct {
	size, off int64
}

func (o *offsetBytes) Read(p []byte) (int, error) {
	if o.off >= o.size {
		return 0, io.EOF
	}
	if rest := o.size - o.off; int64(len(p)) > rest {
		p = p[:rest]
	}
	n := 0
	var idx [8]byte
	for n < len(p) {
		block := (o.off + int64(n)) / 32
		binary.LittleEndian.PutUint64(idx[:], uint64(block))
		sum := sha256.Sum256(idx[:])
		n += copy(p[n:], sum[(o.off+int64(n))%32:])
	}
	o.off += int64(n)
	return n, nil
}

func (o *offsetBytes) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += o.off
	case io.SeekEnd:
		offset += o.size
	}
	if offset < 0 {
		return 0, errors.New("negative offset")
	}
	o.off = offset
	return offset, nil
}

// throttled holds a response to rate bytes per second.
type throttled struct {
	http.ResponseWriter
	rate    int64
	written int64
	start   time.Time
}

func (w *throttled) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.written += int64(n)
	due := time.Duration(float64(w.written) / float64(w.rate) * float64(time.Second))
	if ahead := due - time.Since(w.start); ahead > 0 {
		time.Sleep(ahead)
	}
	return n, err
}
