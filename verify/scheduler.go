package verify

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/robfig/cron/v3"
)

// Scheduled is what a scheduled run needs.
type Scheduled struct {
	Driver  storagedriver.StorageDriver
	Metrics *Metrics
	// Busy, when set and true, skips the run that comes due: the garbage
	// collector deleting blobs meanwhile would be reported as missing.
	Busy func() bool
	// Logger gets one record per run, one per problem found.
	Logger *slog.Logger
}

// Scheduler triggers runs on dvcr.verify.schedule. A run that comes due
// while another is in progress is skipped, not queued.
type Scheduler struct {
	cron *cron.Cron
}

// StartScheduler starts scheduled runs; an empty schedule returns nil (off).
func StartScheduler(ctx context.Context, schedule string, s Scheduled) (*Scheduler, error) {
	if strings.TrimSpace(schedule) == "" {
		return nil, nil
	}
	sched := cron.New(cron.WithChain(cron.SkipIfStillRunning(cron.DiscardLogger)))
	if _, err := sched.AddFunc(schedule, func() { s.run(ctx) }); err != nil {
		return nil, fmt.Errorf("dvcr.verify.schedule %q: %w", schedule, err)
	}
	sched.Start()
	return &Scheduler{cron: sched}, nil
}

// Stop stops triggering runs and waits for a running one to finish.
func (s *Scheduler) Stop() {
	if s == nil {
		return
	}
	<-s.cron.Stop().Done()
}

func (s Scheduled) run(ctx context.Context) {
	logger := s.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if s.Busy != nil && s.Busy() {
		logger.Info("skipped: a garbage collection run is in progress")
		return
	}
	res, err := Run(ctx, s.Driver, Options{Trigger: "schedule"})
	s.Metrics.Observe(res)
	if rerr := NewResultStore(s.Driver).Add(ctx, *res); rerr != nil {
		logger.Error("recording the result", "err", rerr)
	}
	if err != nil {
		logger.Error("run failed", "err", err)
		return
	}
	logger.Info(fmt.Sprintf("%s: %d blobs checked, %d bytes read, %d images, %d with problems",
		res.Result, res.BlobsChecked, res.BytesRead, len(res.Images), res.ImagesWithProblems()))
	for _, img := range res.Images {
		for _, p := range img.Problems {
			logger.Warn(fmt.Sprintf("%s:%s: %s %s: %s", img.Repository, img.Tag, p.Problem, p.Blob, p.Detail))
		}
	}
}
