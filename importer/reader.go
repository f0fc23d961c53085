package importer

import (
	"context"
	"fmt"
	"io"
)

// exactReader passes exactly size bytes of r: a source that ends early or
// goes on past its announced length fails the import, since the tar header
// already promised size bytes.
type exactReader struct {
	r    io.Reader
	size int64
	n    int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.n >= e.size {
		return 0, e.checkEnd()
	}
	if rest := e.size - e.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := e.r.Read(p)
	e.n += int64(n)
	if err == io.EOF && e.n < e.size {
		return n, fmt.Errorf("%w: the source ended after %d of %d bytes", ErrSizeMismatch, e.n, e.size)
	}
	if err == io.EOF {
		err = nil
	}
	return n, err
}

// checkEnd makes sure the source has nothing past its length.
func (e *exactReader) checkEnd() error {
	var one [1]byte
	for {
		n, err := e.r.Read(one[:])
		if n > 0 {
			return fmt.Errorf("%w: the source has more than the %d bytes it announced", ErrSizeMismatch, e.size)
		}
		if err == io.EOF {
			return io.EOF
		}
		if err != nil {
			return err
		}
	}
}

// contextReader stops reading once ctx is done (a file or stdin does not
// watch the context itself).
func contextReader(ctx context.Context, r io.Reader) io.Reader {
	return readerFunc(func(p []byte) (int, error) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		return r.Read(p)
	})
}

type readerFunc func(p []byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
