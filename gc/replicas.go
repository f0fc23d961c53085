package gc

import (
	"context"
	"errors"
)

// Replicas opens a GC window across the replicas of a registry: it returns
// once every live replica refuses writes and has drained its own.
type Replicas interface {
	Open(ctx context.Context, run string, progress func(string)) (ReplicaWindow, error)
}

// ReplicaWindow is an open window across the replicas.
type ReplicaWindow interface {
	// Lost is closed when the window can no longer be held: deleting must
	// stop.
	Lost() <-chan struct{}
	// Close lets the replicas drop their caches and take writes again.
	Close(ctx context.Context) error
}

// cancelOnLost is ctx, cancelled when lost is closed: a window the replicas
// may take for abandoned must not see another deletion.
func cancelOnLost(ctx context.Context, lost <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		select {
		case <-lost:
			cancel(errors.New("the GC window could not be renewed in the API server; deletions stopped"))
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(nil) }
}
