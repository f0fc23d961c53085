package serve

import (
	"context"
	"fmt"
	"io"

	"github.com/dvcr/dvcr/config"
	"github.com/dvcr/dvcr/gc"
	"github.com/dvcr/dvcr/verify"
)

// leaderWork is what one process does for all, until ctx ends: scheduled
// collections and provisioning. Replicas do it while they lead (after
// finishing an interrupted collection), a single registry always.
func leaderWork(cfg *config.Config, collector *gc.Collector, verifyMetrics *verify.Metrics, runProvisioning func(context.Context), log io.Writer, errc chan<- error) func(context.Context) {
	return func(ctx context.Context) {
		scheduler, err := gc.StartScheduler(ctx, cfg.DVCR.GC.Schedule, collector, log)
		if err != nil {
			errc <- err
			return
		}
		if cfg.DVCR.GC.Schedule != "" {
			fmt.Fprintf(log, "dvcr serve: garbage collection scheduled %q\n", cfg.DVCR.GC.Schedule)
		}
		verifier, err := verify.StartScheduler(ctx, cfg.DVCR.Verify.Schedule, verify.Scheduled{
			Driver: collector.Driver, Metrics: verifyMetrics, Busy: collector.Running, Log: log,
		})
		if err != nil {
			scheduler.Stop()
			errc <- err
			return
		}
		if cfg.DVCR.Verify.Schedule != "" {
			fmt.Fprintf(log, "dvcr serve: storage verification scheduled %q\n", cfg.DVCR.Verify.Schedule)
		}
		go runProvisioning(ctx)
		<-ctx.Done()
		verifier.Stop()
		scheduler.Stop()
	}
}

// recoverGC finishes what a garbage collection run the previous process
// did not survive left, before the registry takes requests; the space of
// what it had detached is freed in the background. A failure is reported,
// not fatal: the images must be served.
func recoverGC(ctx context.Context, collector *gc.Collector, log io.Writer) {
	report := func(line string) { fmt.Fprintln(log, "dvcr serve: gc:", line) }
	if err := collector.Recover(ctx, report); err != nil {
		// Serving the images matters more: what recovery did not finish
		// is harmless (unreferenced leftovers) and retried at next start.
		report("recovering from an interrupted run failed, serving anyway: " + err.Error())
	}
	go func() {
		if _, err := collector.FreeLeftovers(ctx, report); err != nil {
			report("freeing what an interrupted run left: " + err.Error())
		}
	}()
}
