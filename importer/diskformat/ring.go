package diskformat

// ring keeps the last len(buf) bytes written to it, in O(len(p)) per write
// whatever the write sizes, for footers (vmdk streamOptimized, vhd, xz).
type ring struct {
	buf   []byte
	w     int   // next write index
	total int64 // bytes ever written
}

func newRing(n int) *ring { return &ring{buf: make([]byte, n)} }

func (r *ring) write(p []byte) {
	r.total += int64(len(p))
	if len(p) >= len(r.buf) {
		copy(r.buf, p[len(p)-len(r.buf):])
		r.w = 0
		return
	}
	n := copy(r.buf[r.w:], p)
	if n < len(p) {
		copy(r.buf, p[n:])
	}
	r.w = (r.w + len(p)) % len(r.buf)
}

// bytes returns the kept tail in stream order (a fresh slice).
func (r *ring) bytes() []byte {
	if r.total < int64(len(r.buf)) {
		return append([]byte(nil), r.buf[:r.w]...)
	}
	out := make([]byte, 0, len(r.buf))
	out = append(out, r.buf[r.w:]...)
	return append(out, r.buf[:r.w]...)
}
