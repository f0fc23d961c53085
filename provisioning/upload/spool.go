package upload

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// copyBufSize bounds the memory of one upload: the body goes through this
// buffer to the spool file, never into memory as a whole.
const copyBufSize = 1 << 20

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// spoolPath is the spool file of a token: named after its SHA-256, so the
// name reveals nothing and the same token finds it again after a restart.
func spoolPath(dir, token string) string {
	return filepath.Join(dir, "upload-"+tokenHash(token)+".part")
}

// spoolSize is the number of bytes kept for a token (0 without a file).
func spoolSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// spool is an open spool file and the number of bytes it holds.
type spool struct {
	f    *os.File
	path string
	kept int64
}

// openSpool opens the spool file at path positioned after its bytes;
// fresh truncates it first (an upload starting over from 0).
func openSpool(path string, fresh bool) (*spool, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	s := &spool{f: f, path: path}
	if err := s.position(fresh); err != nil {
		_ = f.Close()
		return nil, err
	}
	return s, nil
}

func (s *spool) position(fresh bool) error {
	if fresh {
		if err := s.f.Truncate(0); err != nil {
			return err
		}
	}
	st, err := s.f.Stat()
	if err != nil {
		return err
	}
	s.kept = st.Size()
	_, err = s.f.Seek(s.kept, io.SeekStart)
	return err
}

// fill appends body to the file until it ends or, with limit ≥ 0, until
// limit more bytes are kept. It tells a failure to read the body (the
// uploader: connection gone, idle, cancelled) from a failure to write the
// file (the disk), because they are answered differently. progress sees
// the bytes kept after each write.
func (s *spool) fill(body io.Reader, limit int64, progress func(int64)) (readErr, writeErr error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	end := s.kept + limit
	for limit < 0 || s.kept < end {
		p := *bp
		if limit >= 0 && end-s.kept < int64(len(p)) {
			p = p[:end-s.kept]
		}
		n, rerr := body.Read(p)
		if n > 0 {
			// os.File.Write reports exactly the bytes written, even when
			// it fails midway, so kept always matches the file's content.
			w, werr := s.f.Write(p[:n])
			s.kept += int64(w)
			progress(s.kept)
			if werr != nil {
				return nil, werr
			}
		}
		if rerr == io.EOF {
			return nil, nil
		}
		if rerr != nil {
			return rerr, nil
		}
	}
	return nil, nil
}

// keep makes the bytes kept durable before their count is reported to
// the uploader as a resume offset: the file is cut to exactly the bytes
// counted (nothing half-written past them) and fsynced.
func (s *spool) keep() error {
	if err := s.f.Truncate(s.kept); err != nil {
		return err
	}
	return s.f.Sync()
}

// rewind positions the file at its start, for the Receiver.
func (s *spool) rewind() error {
	_, err := s.f.Seek(0, io.SeekStart)
	return err
}

func (s *spool) close() { _ = s.f.Close() }

// remove deletes the spool file (still open files stay readable).
func (s *spool) remove() { _ = os.Remove(s.path) }

// diskFull tells whether a write failed for want of space or quota.
func diskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// prepareSpoolDir creates dir (mode 0700) if missing and checks that it is
// a directory where files can be created.
func prepareSpoolDir(dir string) error {
	if dir == "" {
		return fmt.Errorf("%w: no directory given", ErrSpoolDir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("%w: %w", ErrSpoolDir, err)
	}
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSpoolDir, err)
	}
	_ = f.Close()
	_ = os.Remove(f.Name())
	return nil
}
