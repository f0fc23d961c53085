package gc

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Scheduler triggers runs on dvcr.gc.schedule. A run that comes due while
// another is in progress is skipped, not queued.
type Scheduler struct {
	cron *cron.Cron
}

// StartScheduler starts scheduled runs; an empty schedule returns nil (off).
// Runs log their progress to log.
func StartScheduler(ctx context.Context, schedule string, c *Collector, log io.Writer) (*Scheduler, error) {
	if strings.TrimSpace(schedule) == "" {
		return nil, nil
	}
	sched := cron.New(cron.WithChain(cron.SkipIfStillRunning(cron.DiscardLogger)))
	_, err := sched.AddFunc(schedule, func() { runScheduled(ctx, c, log) })
	if err != nil {
		return nil, fmt.Errorf("dvcr.gc.schedule %q: %w", schedule, err)
	}
	sched.Start()
	return &Scheduler{cron: sched}, nil
}

func runScheduled(ctx context.Context, c *Collector, log io.Writer) {
	prefix := func(s string) {
		fmt.Fprintf(log, "dvcr gc (schedule) %s: %s\n", time.Now().UTC().Format(time.RFC3339), s)
	}
	if _, err := c.Run(ctx, "schedule", prefix); err != nil {
		prefix("run failed: " + err.Error())
	}
}

// Stop stops triggering runs and waits for a running one to finish.
func (s *Scheduler) Stop() {
	if s == nil {
		return
	}
	<-s.cron.Stop().Done()
}
