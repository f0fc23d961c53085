package gc

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/robfig/cron/v3"
)

// Scheduler triggers runs on dvcr.gc.schedule. A run that comes due while
// another is in progress is skipped, not queued.
type Scheduler struct {
	cron *cron.Cron
}

// StartScheduler starts scheduled runs; an empty schedule returns nil (off).
// Runs log their progress to logger, one record per line of progress.
func StartScheduler(ctx context.Context, schedule string, c *Collector, logger *slog.Logger) (*Scheduler, error) {
	if strings.TrimSpace(schedule) == "" {
		return nil, nil
	}
	sched := cron.New(cron.WithChain(cron.SkipIfStillRunning(cron.DiscardLogger)))
	_, err := sched.AddFunc(schedule, func() { runScheduled(ctx, c, logger) })
	if err != nil {
		return nil, fmt.Errorf("dvcr.gc.schedule %q: %w", schedule, err)
	}
	sched.Start()
	return &Scheduler{cron: sched}, nil
}

func runScheduled(ctx context.Context, c *Collector, logger *slog.Logger) {
	progress := func(s string) { logger.Info(s) }
	if _, err := c.Run(ctx, "schedule", progress); err != nil {
		logger.Error("run failed: " + err.Error())
	}
}

// Stop stops triggering runs and waits for a running one to finish.
func (s *Scheduler) Stop() {
	if s == nil {
		return
	}
	<-s.cron.Stop().Done()
}
