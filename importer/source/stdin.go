package source

import (
	"context"
	"errors"
	"io"
)

// stdinSource reads Options.Stdin; its size is unknown until the end.
type stdinSource struct{ r io.Reader }

func newStdin(opts Options) (*stdinSource, error) {
	if opts.Stdin == nil {
		return nil, errors.New("source - (standard input): no input stream given")
	}
	return &stdinSource{r: opts.Stdin}, nil
}

func (s *stdinSource) String() string { return "standard input" }

// Open does not close the caller's stdin when the Body is closed: it is not
// ours to close.
func (s *stdinSource) Open(ctx context.Context) (*Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &Stream{Body: io.NopCloser(s.r), Name: DefaultName, Size: -1}, nil
}
