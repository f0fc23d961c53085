package exporter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/dvcr/dvcr/importer/registryclient"
	"github.com/dvcr/dvcr/progress"
)

// blobReader reads a blob of known size from an offset and, when the
// connection drops or sends nothing for idle, asks again with Range from
// the byte reached. It gives up after maxRetries failures in a row without
// a byte read.
type blobReader struct {
	ctx        context.Context
	c          *registryclient.Client
	repo       string
	desc       v1.Descriptor
	off        int64
	body       io.ReadCloser
	cancel     context.CancelFunc // ends body's request
	failures   int
	maxRetries int
	idle       time.Duration
	prog       *progress.Counter
}

// open starts a request from off; a registry silent for idle is given up.
func (b *blobReader) open() error {
	ctx, cancel := context.WithCancel(b.ctx)
	timer := time.AfterFunc(b.idle, cancel)
	body, err := b.c.OpenBlob(ctx, b.repo, b.desc.Digest, b.off)
	if !timer.Stop() && err != nil {
		err = fmt.Errorf("no answer for %s: %w", b.idle, err)
	}
	if err != nil {
		cancel()
		return err
	}
	b.body, b.cancel = body, cancel
	return nil
}

// read reads from the body; a body silent for idle is given up.
func (b *blobReader) read(p []byte) (int, error) {
	timer := time.AfterFunc(b.idle, b.cancel)
	n, err := b.body.Read(p)
	if !timer.Stop() && err != nil {
		err = fmt.Errorf("no data for %s: %w", b.idle, err)
	}
	return n, err
}

// Read never reads past the descriptor's size; the end of the body before
// it is a dropped connection.
func (b *blobReader) Read(p []byte) (int, error) {
	for {
		if b.off >= b.desc.Size {
			return 0, io.EOF
		}
		if b.body == nil {
			if err := b.open(); err != nil {
				if rerr := b.retry(err); rerr != nil {
					return 0, rerr
				}
				continue
			}
		}
		if rest := b.desc.Size - b.off; int64(len(p)) > rest {
			p = p[:rest]
		}
		n, err := b.read(p)
		b.off += int64(n)
		if n > 0 {
			b.failures = 0
			return n, nil
		}
		if err == nil {
			continue
		}
		b.Close()
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if rerr := b.retry(err); rerr != nil {
			return 0, rerr
		}
	}
}

// retry waits before the next attempt, or returns why not to.
func (b *blobReader) retry(cause error) error {
	if b.ctx.Err() != nil {
		return b.ctx.Err()
	}
	var apiErr *registryclient.APIError
	if errors.As(cause, &apiErr) {
		return cause // the registry answered: asking again will not help
	}
	b.failures++
	if b.failures > b.maxRetries {
		return fmt.Errorf("reading the layer at byte %d of %d: %w (gave up after %d attempts)", b.off, b.desc.Size, cause, b.maxRetries)
	}
	wait := min(time.Duration(b.failures)*500*time.Millisecond, 5*time.Second)
	b.prog.Note(PhaseRetry, fmt.Sprintf("connection lost at byte %d of %d of the layer (%v): resuming in %s (attempt %d of %d)",
		b.off, b.desc.Size, cause, wait, b.failures, b.maxRetries))
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-b.ctx.Done():
		return b.ctx.Err()
	case <-t.C:
		return nil
	}
}

// seek moves to off; the next Read asks from there.
func (b *blobReader) seek(off int64) {
	b.Close()
	b.off = off
}

// Close ends the current connection.
func (b *blobReader) Close() error {
	if b.body != nil {
		b.body.Close()
		b.cancel()
		b.body, b.cancel = nil, nil
	}
	return nil
}
