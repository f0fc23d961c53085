package registryclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// Upload is one blob upload session. Data goes in chunks of
// Options.ChunkSize, each one PATCH: a read-only window of the registry can
// begin between two chunks (a chunk is a short write for its drain), and a
// chunk refused with 503 is sent again from memory after the wait, so the
// source is read exactly once.
type Upload struct {
	c        *Client
	repo     string
	location string
	offset   int64
	digester digest.Digester // of every byte Copy sent
}

// StartUpload opens an upload session in repo.
func (c *Client) StartUpload(ctx context.Context, repo string) (*Upload, error) {
	u, err := c.url("/v2/" + repo + "/blobs/uploads/")
	if err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, func() (*http.Request, error) {
		return http.NewRequest(http.MethodPost, u.String(), nil)
	}, http.StatusAccepted)
	if err != nil {
		return nil, fmt.Errorf("starting an upload to %s: %w", repo, err)
	}
	drain(resp)
	loc := resp.Header.Get("Location")
	if loc == "" {
		return nil, fmt.Errorf("starting an upload to %s: the registry sent no Location", repo)
	}
	return &Upload{c: c, repo: repo, location: loc, digester: digest.Canonical.Digester()}, nil
}

// Offset is the number of bytes the registry has acknowledged.
func (up *Upload) Offset() int64 { return up.offset }

// Digest is the sha256 of the bytes Copy has sent, for Commit.
func (up *Upload) Digest() digest.Digest { return up.digester.Digest() }

// chunkBuffers is how many chunks are in memory: one being sent (and
// hashed, at the same time), one being read from the source.
const chunkBuffers = 2

// chunk is a filled buffer, or the error that ended the reading.
type chunk struct {
	buf []byte
	n   int
	err error
}

// Copy reads r to its end and sends it. Three things overlap: reading the
// next chunk from the source (its own goroutine), sending the current one
// and hashing it (the digest the registry checks at Commit).
func (up *Upload) Copy(ctx context.Context, r io.Reader) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	free := make(chan []byte, chunkBuffers)
	for range chunkBuffers {
		free <- make([]byte, up.c.opts.ChunkSize)
	}
	filled := make(chan chunk, chunkBuffers)
	go readChunks(ctx, r, free, filled)
	start := up.offset
	for ch := range filled {
		if err := up.sendAndHash(ctx, ch.buf[:ch.n]); err != nil {
			return up.offset - start, err
		}
		if ch.err != nil {
			if errors.Is(ch.err, io.EOF) {
				return up.offset - start, nil
			}
			return up.offset - start, ch.err
		}
		free <- ch.buf
	}
	return up.offset - start, ctx.Err()
}

// sendAndHash PATCHes data while the digest takes it in.
func (up *Upload) sendAndHash(ctx context.Context, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	hashed := make(chan struct{})
	go func() {
		_, _ = up.digester.Hash().Write(data)
		close(hashed)
	}()
	err := up.patch(ctx, data)
	<-hashed
	return err
}

// readChunks fills buffers from r until EOF or an error, which travels in
// the last chunk.
func readChunks(ctx context.Context, r io.Reader, free <-chan []byte, filled chan<- chunk) {
	defer close(filled)
	for {
		var buf []byte
		select {
		case buf = <-free:
		case <-ctx.Done():
			return
		}
		n, err := io.ReadFull(r, buf)
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = io.EOF
		}
		select {
		case filled <- chunk{buf: buf, n: n, err: err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// patch sends one chunk at the current offset. A dropped connection is
// recovered by asking the registry how much it kept and sending the rest.
func (up *Upload) patch(ctx context.Context, data []byte) error {
	start := up.offset
	end := start + int64(len(data))
	for attempt := 0; ; attempt++ {
		err := up.patchOnce(ctx, data[up.offset-start:])
		if err == nil && up.offset == end {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("registry acknowledged %d bytes, sent up to %d", up.offset, end)
		}
		if ctx.Err() != nil || attempt >= maxChunkRetries || !recoverable(err) {
			return fmt.Errorf("uploading to %s at byte %d: %w", up.repo, up.offset, err)
		}
		if serr := up.syncOffset(ctx, start, end); serr != nil {
			return fmt.Errorf("uploading to %s: %w (after: %w)", up.repo, serr, err)
		}
		if up.offset == end {
			return nil
		}
		time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
	}
}

// maxChunkRetries bounds the resends of one chunk after a failure.
const maxChunkRetries = 3

// recoverable tells failures after which the registry may hold part of the
// chunk (a dropped connection, a server error, a range it disagrees with)
// from answers that will not change (auth, bad request, upload unknown).
func recoverable(err error) bool {
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		return true // transport error: the connection dropped
	}
	if apiErr.Status == http.StatusInsufficientStorage {
		return false // the registry released the upload; resending cannot fit
	}
	return apiErr.Status == http.StatusRequestedRangeNotSatisfiable || apiErr.Status >= 500
}

func (up *Upload) patchOnce(ctx context.Context, data []byte) error {
	u, err := up.c.url(up.location)
	if err != nil {
		return err
	}
	start := up.offset
	resp, err := up.c.do(ctx, func() (*http.Request, error) {
		req, err := http.NewRequest(http.MethodPatch, u.String(), bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		req.ContentLength = int64(len(data))
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", start, start+int64(len(data))-1))
		return req, nil
	}, http.StatusAccepted, http.StatusNoContent)
	if err != nil {
		return err
	}
	drain(resp)
	return up.accept(resp, start+int64(len(data)))
}

// accept takes the new Location and checks the acknowledged range.
func (up *Upload) accept(resp *http.Response, want int64) error {
	if loc := resp.Header.Get("Location"); loc != "" {
		up.location = loc
	}
	got, ok := parseRange(resp.Header.Get("Range"))
	if !ok {
		up.offset = want // registries may omit Range on PATCH; trust the 202
		return nil
	}
	up.offset = got
	return nil
}

// syncOffset asks the registry how many bytes it holds; the answer must lie
// within the chunk being sent, or the data to resend is gone.
func (up *Upload) syncOffset(ctx context.Context, chunkStart, chunkEnd int64) error {
	got, loc, err := up.status(ctx)
	if err != nil {
		return err
	}
	if got < chunkStart || got > chunkEnd {
		return fmt.Errorf("%w: the registry holds %d bytes, outside the chunk %d-%d being resent", ErrUploadLost, got, chunkStart, chunkEnd)
	}
	if loc != "" {
		up.location = loc
	}
	up.offset = got
	return nil
}

// status asks the registry how many bytes the session holds, and where it
// is now (its Location, "" if the registry sent none).
func (up *Upload) status(ctx context.Context) (int64, string, error) {
	u, err := up.c.url(up.location)
	if err != nil {
		return 0, "", err
	}
	resp, err := up.c.do(ctx, func() (*http.Request, error) {
		return http.NewRequest(http.MethodGet, u.String(), nil)
	}, http.StatusNoContent)
	if err != nil {
		return 0, "", err
	}
	drain(resp)
	got, _ := parseRange(resp.Header.Get("Range"))
	return got, resp.Header.Get("Location"), nil
}

// parseRange reads a Range header "0-N" into N+1 bytes.
func parseRange(v string) (int64, bool) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "bytes=")
	_, last, ok := strings.Cut(v, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(last, 10, 64)
	if err != nil {
		return 0, false
	}
	return n + 1, true
}

// Commit ends the upload as blob dgst; the registry checks the digest.
func (up *Upload) Commit(ctx context.Context, dgst digest.Digest) error {
	u, err := up.c.url(up.location)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("digest", dgst.String())
	u.RawQuery = q.Encode()
	resp, err := up.c.do(ctx, func() (*http.Request, error) {
		return http.NewRequest(http.MethodPut, u.String(), nil)
	}, http.StatusCreated)
	if err != nil {
		return fmt.Errorf("committing blob %s in %s: %w", dgst, up.repo, err)
	}
	drain(resp)
	return nil
}

// Cancel drops the session and its data; best effort, with its own short
// deadline since the caller's context is often what ended.
//
// A chunk cut short may have reached the registry in part: it then holds
// more than the session's Location says, and distribution refuses the
// DELETE of that Location (416). The session's current Location, asked
// for, deletes it; otherwise its data would stay until upload purging.
func (up *Upload) Cancel() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if up.deleteSession(ctx) != http.StatusRequestedRangeNotSatisfiable {
		return
	}
	if _, loc, err := up.status(ctx); err == nil && loc != "" {
		up.location = loc
		up.deleteSession(ctx)
	}
}

// deleteSession sends the DELETE of the session's Location; its status,
// 0 when no answer came.
func (up *Upload) deleteSession(ctx context.Context) int {
	u, err := up.c.url(up.location)
	if err != nil {
		return 0
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, u.String(), nil)
	if err != nil {
		return 0
	}
	resp, err := up.c.http.Do(req)
	if err != nil {
		return 0
	}
	drain(resp)
	return resp.StatusCode
}
