package upload

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// contentRange is a parsed Content-Range of a PUT or POST.
type contentRange struct {
	first int64 // offset of the body's first byte: must equal the bytes kept
	last  int64 // offset of its last byte; -1: unknown (curl -C N -T -)
	total int64 // final size of the upload; -1: unknown ("*")
}

// length is the number of body bytes the range announces, -1 if unknown.
func (c *contentRange) length() int64 {
	if c.last < 0 {
		return -1
	}
	return c.last - c.first + 1
}

var errBadRange = errors.New("malformed Content-Range")

// parseContentRange parses "bytes N-M/TOTAL", "bytes N-M/*" and
// "bytes */TOTAL" (no body: the bytes kept are the whole upload, e.g. to
// retry after a 503). An empty header gives nil. curl -C N -T - (standard
// input, size unknown) sends "bytes N-(N-2)/(N-1)"; that is read as
// "from N, end and total unknown" so that such a resume works too.
func parseContentRange(h string) (*contentRange, error) {
	if h == "" {
		return nil, nil
	}
	spec, ok := strings.CutPrefix(strings.TrimSpace(h), "bytes ")
	if !ok {
		return nil, fmt.Errorf("%w: %q: only bytes ranges are supported", errBadRange, h)
	}
	rng, tot, ok := strings.Cut(strings.TrimSpace(spec), "/")
	if !ok {
		return nil, fmt.Errorf("%w: %q: want bytes N-M/TOTAL", errBadRange, h)
	}
	total := int64(-1)
	if tot != "*" {
		t, err := strconv.ParseInt(tot, 10, 64)
		if err != nil || t < 0 {
			return nil, fmt.Errorf("%w: %q: bad total", errBadRange, h)
		}
		total = t
	}
	if rng == "*" {
		if total < 0 {
			return nil, fmt.Errorf("%w: %q: bytes */* says nothing", errBadRange, h)
		}
		return &contentRange{first: total, last: total - 1, total: total}, nil
	}
	return parseSpan(h, rng, total)
}

func parseSpan(h, rng string, total int64) (*contentRange, error) {
	a, b, ok := strings.Cut(rng, "-")
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || err1 != nil || err2 != nil || first < 0 {
		return nil, fmt.Errorf("%w: %q: want bytes N-M/TOTAL", errBadRange, h)
	}
	if last == first-2 && total == first-1 {
		return &contentRange{first: first, last: -1, total: -1}, nil // curl -C N -T -
	}
	if last < first || (total >= 0 && last >= total) {
		return nil, fmt.Errorf("%w: %q: inconsistent offsets", errBadRange, h)
	}
	return &contentRange{first: first, last: last, total: total}, nil
}

// checkLength verifies that Content-Length (-1: not given) agrees with the
// range, so that a body of another size is refused before it is spooled.
func checkLength(cr *contentRange, contentLength int64) error {
	if cr == nil || contentLength < 0 || cr.length() < 0 || contentLength == cr.length() {
		return nil
	}
	return fmt.Errorf("%w: Content-Length %d but the range holds %d bytes", errBadRange, contentLength, cr.length())
}

// defaultName is given to the Receiver when the request names no file.
const defaultName = "disk.img"

// uploadName is the file name of the upload: ?name= in the URL, else the
// filename of Content-Disposition, else defaultName. Only a base name is
// kept (no directories, no control characters, at most 255 bytes).
func uploadName(r *http.Request) string {
	name := r.URL.Query().Get("name")
	if name == "" {
		if _, params, err := mime.ParseMediaType(r.Header.Get("Content-Disposition")); err == nil {
			name = params["filename"]
		}
	}
	name = path.Base(strings.ReplaceAll(name, `\`, "/"))
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, name)
	if name == "" || name == "." || name == "/" || name == ".." || len(name) > 255 {
		return defaultName
	}
	return name
}

// tokenFromPath takes the token out of /upload/<token>; nothing may follow.
func tokenFromPath(p string) (string, bool) {
	token, ok := strings.CutPrefix(p, "/upload/")
	if !ok || !validToken(token) {
		return "", false
	}
	return token, true
}
