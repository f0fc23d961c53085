package source

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// fileSource reads a local file.
type fileSource struct{ path string }

func newFile(path string) *fileSource { return &fileSource{path: path} }

func (s *fileSource) String() string { return s.path }

// Open refuses anything but a regular file: a directory cannot be a disk,
// and devices, FIFOs and sockets have no size and may block on open.
func (s *fileSource) Open(ctx context.Context) (*Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkRegular(s.path); err != nil {
		return nil, err
	}
	f, err := os.Open(s.path)
	if err != nil {
		return nil, fileError(s.path, err)
	}
	// Stat the open file too: the path may have been replaced in between.
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s: not a regular file", s.path)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Stream{Body: f, Name: SanitizeName(filepath.Base(s.path)), Size: fi.Size()}, nil
}

func checkRegular(path string) error {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return fileError(path, err)
	case fi.IsDir():
		return fmt.Errorf("%s is a directory, not a disk image file", path)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file (%s); only regular files can be imported",
			path, fileKind(fi.Mode()))
	}
	return nil
}

func fileError(path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: file %s does not exist", ErrNotFound, path)
	}
	return fmt.Errorf("open %s: %w", path, err)
}

func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "mode " + m.Type().String()
}
