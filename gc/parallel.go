// The worker pool of the collector's phases.

package gc

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// forEachParallel calls fn for 0..n-1 on up to workers goroutines (at
// least one). The first error stops the others and is returned; with no
// error it returns ctx's.
func forEachParallel(ctx context.Context, workers, n int, fn func(context.Context, int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(workers, 1))
	for i := range n {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if gctx.Err() != nil { // stopped while this call waited for a slot
				return nil
			}
			return fn(gctx, i)
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}
