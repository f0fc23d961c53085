package storage

import (
	"context"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
)

// WatchSpace wraps a storage driver so that writes failing for lack of
// space are reported to the SpaceNote of their context (WithSpaceNote):
// the registry answers such a request 507 and releases what it wrote.
func WatchSpace(d storagedriver.StorageDriver) storagedriver.StorageDriver {
	return &spaceDriver{StorageDriver: d}
}

type spaceDriver struct {
	storagedriver.StorageDriver
}

// Unwrap is the driver underneath (for NewObjectDeleter and the like).
func (d *spaceDriver) Unwrap() storagedriver.StorageDriver { return d.StorageDriver }

func (d *spaceDriver) PutContent(ctx context.Context, path string, content []byte) error {
	err := d.StorageDriver.PutContent(ctx, path, content)
	note(ctx, path, err, nil)
	return err
}

func (d *spaceDriver) Move(ctx context.Context, from, to string) error {
	err := d.StorageDriver.Move(ctx, from, to)
	note(ctx, to, err, nil)
	return err
}

func (d *spaceDriver) Writer(ctx context.Context, path string, appendMode bool) (storagedriver.FileWriter, error) {
	w, err := d.StorageDriver.Writer(ctx, path, appendMode)
	note(ctx, path, err, nil)
	if err != nil {
		return nil, err
	}
	return &spaceWriter{FileWriter: w, ctx: ctx, path: path}, nil
}

// spaceWriter reports the writes, flushes and commits of one file.
type spaceWriter struct {
	storagedriver.FileWriter
	ctx  context.Context
	path string
}

func (w *spaceWriter) Write(p []byte) (int, error) {
	n, err := w.FileWriter.Write(p)
	note(w.ctx, w.path, err, w.FileWriter)
	return n, err
}

func (w *spaceWriter) Close() error {
	err := w.FileWriter.Close()
	note(w.ctx, w.path, err, w.FileWriter)
	return err
}

func (w *spaceWriter) Commit(ctx context.Context) error {
	err := w.FileWriter.Commit(ctx)
	note(w.ctx, w.path, err, w.FileWriter)
	return err
}
