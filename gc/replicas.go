package gc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dvcr/dvcr/storage"
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

// openReplicas opens the window on every replica (with Replicas) and holds
// it for Pause. It returns the context the run goes on with, cancelled when
// the window is lost, and the function that closes the window; call it even
// on error.
func (c *Collector) openReplicas(ctx context.Context, res *Result, progress func(string)) (context.Context, func(), error) {
	closeWindow := func() {}
	if c.Replicas != nil {
		w, err := c.Replicas.Open(ctx, runID(res.StartedAt), progress)
		if err != nil {
			return ctx, closeWindow, fmt.Errorf("opening the window on every replica: %w", err)
		}
		lostCtx, stop := cancelOnLost(ctx, w.Lost())
		closeWindow = func() {
			stop()
			if err := w.Close(context.WithoutCancel(ctx)); err != nil {
				res.Warnings = append(res.Warnings, err.Error())
			}
		}
		ctx = lostCtx
	}
	if c.Hooks.Pause > 0 {
		progress(fmt.Sprintf("%s: holding the window open for %s", PauseEnv, c.Hooks.Pause))
		select {
		case <-time.After(c.Hooks.Pause):
		case <-ctx.Done():
			return ctx, closeWindow, ctx.Err()
		}
	}
	return ctx, closeWindow, nil
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

// RemoveRepository removes one repository while every replica refuses
// writes, then lets each drop its caches: a replica that still described the
// repository's blobs from its cache would accept a push that skips them.
// Without replicas it is storage.RemoveRepository. It does not overlap a
// garbage collection run (ErrRunInProgress).
func (c *Collector) RemoveRepository(ctx context.Context, path string) error {
	if c.Replicas == nil {
		return storage.RemoveRepository(ctx, c.Driver, path)
	}
	if !c.running.CompareAndSwap(false, true) {
		return ErrRunInProgress
	}
	defer c.running.Store(false)
	w, err := c.Replicas.Open(ctx, "delete-"+runID(c.now()), func(string) {})
	if err != nil {
		return fmt.Errorf("making every replica refuse writes for the deletion: %w", err)
	}
	err = storage.RemoveRepository(ctx, c.Driver, path)
	if c.Live != nil {
		if rErr := c.Live.ResetCaches(); rErr != nil {
			err = errors.Join(err, rErr)
		}
	}
	return errors.Join(err, w.Close(context.WithoutCancel(ctx)))
}
