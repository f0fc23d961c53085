package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Backoff between resume attempts: short, because a dropped connection is
// usually a proxy or load balancer hiccup, and growing, so a flapping
// server is not hammered.
var (
	backoffBase = 200 * time.Millisecond
	backoffMax  = 5 * time.Second
)

// resumer is the Body of an HTTP stream. When the connection drops it
// re-requests the rest with Range and If-Range and carries on, so the
// reader sees exactly the file's bytes once. It only ever holds the
// current response body, never a buffer of the file.
type resumer struct {
	ctx      context.Context
	src      *httpSource
	body     io.ReadCloser
	off      int64  // bytes handed to the caller so far
	total    int64  // Content-Length of the first answer, -1 if unknown
	etag     string // validators of the first answer, to detect a changed object
	modified string
	ranges   bool  // server advertised Accept-Ranges: bytes
	attempts int   // resume attempts since the last progress
	pending  error // read error held back while returning the bytes before it
	err      error // final error, sticky
}

func newResumer(ctx context.Context, src *httpSource, resp *http.Response) *resumer {
	return &resumer{
		ctx:      ctx,
		src:      src,
		body:     resp.Body,
		total:    resp.ContentLength,
		etag:     resp.Header.Get("ETag"),
		modified: resp.Header.Get("Last-Modified"),
		ranges:   strings.EqualFold(strings.TrimSpace(resp.Header.Get("Accept-Ranges")), "bytes"),
	}
}

func (r *resumer) Read(p []byte) (int, error) {
	for r.err == nil {
		if r.pending != nil {
			cause := r.pending
			r.pending = nil
			r.err = r.resume(cause)
			continue
		}
		n, err := r.body.Read(p)
		r.off += int64(n)
		if n > 0 {
			r.attempts = 0 // progress: a later drop gets a fresh set of retries
		}
		err = r.check(err)
		if err == nil || err == io.EOF {
			return n, err
		}
		if n > 0 {
			r.pending = err
			return n, nil
		}
		r.err = r.resume(err)
	}
	return 0, r.err
}

// check tells a real end of file from a connection that dropped: an EOF
// before Content-Length is a short body. (net/http already stops a body at
// its Content-Length, so "too long" cannot happen.)
func (r *resumer) check(err error) error {
	if err == io.EOF && r.total >= 0 && r.off < r.total {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (r *resumer) Close() error {
	if r.err == nil {
		r.err = errors.New("read from closed body")
	}
	return r.body.Close()
}

// resume retries until a new body continues at r.off, the error is
// permanent, ctx is done or the attempts are used up.
func (r *resumer) resume(cause error) error {
	for {
		if err := r.ctx.Err(); err != nil {
			return fmt.Errorf("GET %s: %w", r.src, err)
		}
		if r.total < 0 && !r.ranges {
			return fmt.Errorf("%w: %s: connection dropped after %s of unknown total and the server does not accept ranges: %v",
				ErrTransfer, r.src, human(r.off), cause)
		}
		if r.attempts >= r.src.opts.retries() {
			return fmt.Errorf("%w: %s: gave up after %d retries, received %s of %s: %v",
				ErrTransfer, r.src, r.attempts, r.progress(), r.totalString(), cause)
		}
		r.attempts++
		r.src.opts.notify(fmt.Sprintf("connection dropped at %s of %s, resuming with Range (attempt %d of %d: %v)",
			r.progress(), r.totalString(), r.attempts, r.src.opts.retries(), cause))
		if err := r.sleep(); err != nil {
			return err
		}
		r.body.Close()
		err := r.reopen()
		if err == nil || !retryable(err) {
			return err
		}
		cause = err
	}
}

func (r *resumer) sleep() error {
	d := backoffBase << (r.attempts - 1)
	if d > backoffMax || d <= 0 {
		d = backoffMax
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.ctx.Done():
		return fmt.Errorf("GET %s: %w", r.src, r.ctx.Err())
	case <-t.C:
		return nil
	}
}

// reopen asks for the rest of the object and installs the new body.
func (r *resumer) reopen() error {
	r.body = http.NoBody
	resp, err := r.src.get(r.ctx, r.rangeHeader())
	if err != nil {
		return err
	}
	switch {
	case resp.StatusCode == http.StatusPartialContent:
		err = r.continuePartial(resp)
	case resp.StatusCode == http.StatusOK:
		err = r.restartFull(resp)
	default:
		err = permanent{r.src.statusError(resp)}
		if resp.StatusCode/100 == 5 || resp.StatusCode == http.StatusTooManyRequests {
			err = r.src.statusError(resp)
		}
	}
	if err != nil {
		resp.Body.Close()
		return err
	}
	r.body = resp.Body
	return nil
}

func (r *resumer) rangeHeader() http.Header {
	h := http.Header{"Range": {fmt.Sprintf("bytes=%d-", r.off)}}
	// If-Range needs a strong validator: a weak ETag would make the server
	// ignore the range, so fall back to the date.
	switch {
	case r.etag != "" && !strings.HasPrefix(r.etag, "W/"):
		h.Set("If-Range", r.etag)
	case r.modified != "":
		h.Set("If-Range", r.modified)
	}
	return h
}

// continuePartial accepts a 206 only if it starts where we stopped and
// belongs to the same object.
func (r *resumer) continuePartial(resp *http.Response) error {
	if err := r.sameObject(resp); err != nil {
		return err
	}
	start, size, err := parseContentRange(resp.Header.Get("Content-Range"))
	if err != nil {
		return permanent{fmt.Errorf("GET %s: resume: %w", r.src, err)}
	}
	if start != r.off {
		return permanent{fmt.Errorf("GET %s: resume asked for byte %d, server sent from %d", r.src, r.off, start)}
	}
	if r.total >= 0 && size >= 0 && size != r.total {
		return fmt.Errorf("%w: %s: size was %d, now %d", ErrSourceChanged, r.src, r.total, size)
	}
	return nil
}

// restartFull handles a 200 to a range request: either the object changed
// (If-Range failed) or the server does not do ranges; in the latter case
// skip what the caller already has.
func (r *resumer) restartFull(resp *http.Response) error {
	if err := r.sameObject(resp); err != nil {
		return err
	}
	if r.total >= 0 && resp.ContentLength >= 0 && resp.ContentLength != r.total {
		return fmt.Errorf("%w: %s: size was %d, now %d", ErrSourceChanged, r.src, r.total, resp.ContentLength)
	}
	r.src.opts.notify(fmt.Sprintf("server ignored Range; downloading again and skipping the first %s", human(r.off)))
	n, err := io.CopyN(io.Discard, resp.Body, r.off)
	if err != nil {
		return fmt.Errorf("GET %s: skipping %d bytes already received: got %d: %w", r.src, r.off, n, err)
	}
	return nil
}

// sameObject compares the validators of a later answer with the first.
func (r *resumer) sameObject(resp *http.Response) error {
	etag, modified := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	if r.etag != "" && etag != "" && etag != r.etag {
		return fmt.Errorf("%w: %s: ETag was %s, now %s", ErrSourceChanged, r.src, r.etag, etag)
	}
	if r.modified != "" && modified != "" && modified != r.modified {
		return fmt.Errorf("%w: %s: Last-Modified was %s, now %s", ErrSourceChanged, r.src, r.modified, modified)
	}
	return nil
}

// parseContentRange reads "bytes START-END/SIZE" (SIZE may be "*", -1).
func parseContentRange(v string) (start, size int64, err error) {
	spec, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	rng, total, ok2 := strings.Cut(spec, "/")
	first, _, ok3 := strings.Cut(rng, "-")
	if !ok || !ok2 || !ok3 {
		return 0, 0, fmt.Errorf("bad Content-Range %q", v)
	}
	if start, err = strconv.ParseInt(first, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("bad Content-Range %q", v)
	}
	if total == "*" {
		return start, -1, nil
	}
	if size, err = strconv.ParseInt(total, 10, 64); err != nil {
		return 0, 0, fmt.Errorf("bad Content-Range %q", v)
	}
	return start, size, nil
}

// permanent marks an answer that another attempt would not change.
type permanent struct{ error }

func (e permanent) Unwrap() error { return e.error }

// retryable: network errors, short bodies and 5xx/429 answers are worth
// another attempt; a changed object, a refusal or a cancelled ctx are not.
func retryable(err error) bool {
	var p permanent
	switch {
	case errors.As(err, &p):
		return false
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	case errors.Is(err, ErrSourceChanged), errors.Is(err, ErrNotFound), errors.Is(err, ErrUnauthorized):
		return false
	}
	return true
}

func (r *resumer) progress() string { return human(r.off) }

func (r *resumer) totalString() string {
	if r.total < 0 {
		return "unknown total"
	}
	return human(r.total)
}

// human formats a byte count the way the CLI shows sizes.
func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	f, i := float64(n)/unit, 0
	for f >= unit && i < 5 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f%ciB", f, "KMGTPE"[i])
}
