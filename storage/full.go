// A full volume: writes that fail for lack of space are recognised, noted
// for the request that made them, and explained with the volume's space.

package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"

	"github.com/dvcr/dvcr/units"
)

// ErrStorageFull: a write failed because the volume has no space left.
var ErrStorageFull = errors.New("DVCR storage is full")

// FullError is ErrStorageFull with the volume's space when it happened.
type FullError struct {
	Free, Total uint64
	Known       bool // false: the space could not be read (not a filesystem)
}

func (e *FullError) Error() string {
	if !e.Known {
		return ErrStorageFull.Error() + "; run garbage collection or enlarge the volume"
	}
	return fmt.Sprintf("%s: %s free of %s; run garbage collection or enlarge the volume",
		ErrStorageFull, units.FormatBytes(e.Free), units.FormatBytes(e.Total))
}

func (e *FullError) Unwrap() error { return ErrStorageFull }

// NewFullError reads the volume's space for the message; root is the
// filesystem driver's root directory ("" when there is none).
func NewFullError(root string) *FullError {
	if root == "" {
		return &FullError{}
	}
	u, err := volumeUsageAt(root)
	if err != nil {
		return &FullError{}
	}
	return &FullError{Free: u.Available, Total: u.Total, Known: true}
}

// IsNoSpace reports whether err is a write refused for lack of space
// (ENOSPC, or a quota's EDQUOT), also inside distribution's driver errors,
// which do not unwrap.
func IsNoSpace(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, ErrStorageFull) {
		return true
	}
	var de storagedriver.Error
	if errors.As(err, &de) && de.Detail != nil {
		return IsNoSpace(de.Detail)
	}
	// Errors flattened to text on their way (errcode details).
	msg := err.Error()
	return strings.Contains(msg, "no space left on device") || strings.Contains(msg, "disk quota exceeded")
}

// SpaceNote collects the storage paths whose writes failed for lack of
// space during one request.
type SpaceNote struct {
	mu      sync.Mutex
	paths   []string
	writers []storagedriver.FileWriter
}

type spaceNoteKey struct{}

// WithSpaceNote returns a context whose driver calls (through a driver of
// WatchSpace) report failed writes to the returned note.
func WithSpaceNote(ctx context.Context) (context.Context, *SpaceNote) {
	n := &SpaceNote{}
	return context.WithValue(ctx, spaceNoteKey{}, n), n
}

// Full reports whether a write of the request failed for lack of space.
func (n *SpaceNote) Full() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.paths) > 0
}

// Paths are the storage paths whose writes failed.
func (n *SpaceNote) Paths() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.paths...)
}

// CancelWriters cancels the writers whose writes failed. Distribution
// leaves the file of a failed upload chunk open, and a deleted file's
// blocks are freed only when its last descriptor is closed.
func (n *SpaceNote) CancelWriters(ctx context.Context) {
	n.mu.Lock()
	writers := n.writers
	n.writers = nil
	n.mu.Unlock()
	for _, w := range writers {
		_ = w.Cancel(ctx)
	}
}

// note records a failed write in the context's note, if it has one; w is
// the writer that failed, if any.
func note(ctx context.Context, path string, err error, w storagedriver.FileWriter) {
	if !IsNoSpace(err) {
		return
	}
	if n, ok := ctx.Value(spaceNoteKey{}).(*SpaceNote); ok {
		n.mu.Lock()
		n.paths = append(n.paths, path)
		if w != nil {
			n.writers = append(n.writers, w)
		}
		n.mu.Unlock()
	}
}
