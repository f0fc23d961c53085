// What one process does for all, and which process that is. One election,
// on the Lease dvcr-leader (cluster.LeaderLease, client-go leader election
// in cluster.Elector), decides it in every mode where there can be more
// than one candidate; the leader runs leaderWork: the scheduled
// collections, the scheduled verifications and the provisioning
// controller (whose controller-runtime manager has no election of its
// own).

package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"

	"k8s.io/apimachinery/pkg/util/uuid"

	"github.com/dvcr/dvcr/cluster"
	"github.com/dvcr/dvcr/config"
	"github.com/dvcr/dvcr/gc"
	"github.com/dvcr/dvcr/logging"
	"github.com/dvcr/dvcr/registry"
	"github.com/dvcr/dvcr/verify"
)

// errLostLeadership ends dvcr serve: client-go does not campaign again in
// the same run, so the process restarts and campaigns anew (a replica as a
// follower).
var errLostLeadership = errors.New("lost the " + cluster.LeaderLease + " Lease: exiting so that this replica restarts as a follower")

// startLeader joins the replicas (dvcr.cluster), builds the provisioning
// controller and starts leaderWork on the process that leads. It returns
// the registry's handler (with the upload endpoint when provisioning is on)
// and, for replicas, the elector the admin endpoint asks who leads.
func startLeader(ctx context.Context, cfg *config.Config, srv *registry.Server, collector *gc.Collector, verifyMetrics *verify.Metrics, addr net.Addr, logger *slog.Logger, errc chan<- error) (http.Handler, *cluster.Elector, error) {
	rs, err := newReplicaSet(cfg, srv, collector, addr, logger)
	if err != nil {
		return nil, nil, err
	}
	handler, runProvisioning, err := startProvisioning(ctx, cfg, srv, addr, rs, logger, errc)
	if err != nil {
		return nil, nil, err
	}
	elector, err := newElector(cfg, rs)
	if err != nil {
		return nil, nil, err
	}
	work := leaderWork(cfg, collector, verifyMetrics, runProvisioning, logger, errc)
	if rs == nil {
		// A single registry recovers before it takes requests.
		recoverGC(ctx, collector, logger)
		startLeading(ctx, elector, work, errc)
		return handler, nil, nil
	}
	rs.start(ctx)
	startLeading(ctx, elector, func(ctx context.Context) {
		// The replica that takes the lead first finishes what an
		// interrupted collection left.
		recoverGC(ctx, collector, logger)
		work(ctx)
	}, errc)
	return handler, elector, nil
}

// newElector is the election of the process that runs leaderWork, where
// there can be more than one candidate:
//   - replicas (dvcr.cluster), each known by its replica name, the name
//     the followers look up the leader's address by;
//   - one registry in a pod with provisioning (the chart sets POD_NAMESPACE
//     and grants the Lease then): the old and the new pod of a restart,
//     each known by its name and a random suffix, so that two processes of
//     one name never both lead.
//
// It is nil where no one else could lead, or the Lease may not be written:
// outside a pod, and in a pod without provisioning (one registry owns its
// volume, and the chart replaces it by Recreate); leaderWork runs at once.
func newElector(cfg *config.Config, rs *replicaSet) (*cluster.Elector, error) {
	if rs != nil {
		return rs.elector, nil
	}
	namespace := os.Getenv("POD_NAMESPACE")
	if namespace == "" || !cfg.DVCR.Provisioning.Enabled {
		return nil, nil
	}
	client, err := leaseClient("dvcr.provisioning.enabled")
	if err != nil {
		return nil, err
	}
	name, err := replicaName()
	if err != nil {
		return nil, fmt.Errorf("dvcr.provisioning: %w", err)
	}
	c := cfg.DVCR.Cluster
	return &cluster.Elector{Client: client, Settings: cluster.Settings{
		Namespace: namespace, Name: name + "_" + string(uuid.NewUUID()),
		LeaseDuration: c.LeaseDuration, RenewDeadline: c.RenewDeadline,
	}}, nil
}

// startLeading runs lead until ctx ends: at once without an elector,
// otherwise while this process holds the Lease. Losing it ends dvcr serve
// (errc).
func startLeading(ctx context.Context, elector *cluster.Elector, lead func(context.Context), errc chan<- error) {
	if elector == nil {
		go lead(ctx)
		return
	}
	go elector.Run(ctx, lead, func() {
		if ctx.Err() == nil {
			errc <- errLostLeadership
		}
	})
}

// leaderWork is what one process does for all, until ctx ends: scheduled
// collections and verifications, and provisioning. The process that leads
// does it (startLeader).
func leaderWork(cfg *config.Config, collector *gc.Collector, verifyMetrics *verify.Metrics, runProvisioning func(context.Context), logger *slog.Logger, errc chan<- error) func(context.Context) {
	return func(ctx context.Context) {
		scheduler, err := gc.StartScheduler(ctx, cfg.DVCR.GC.Schedule, collector, logging.Component(logger, "gc (schedule)", true))
		if err != nil {
			errc <- err
			return
		}
		if cfg.DVCR.GC.Schedule != "" {
			logger.Info("garbage collection scheduled", "schedule", cfg.DVCR.GC.Schedule)
		}
		verifier, err := verify.StartScheduler(ctx, cfg.DVCR.Verify.Schedule, verify.Scheduled{
			Driver: collector.Driver, Metrics: verifyMetrics, Busy: collector.Running,
			Logger: logging.Component(logger, "verify (schedule)", true),
		})
		if err != nil {
			scheduler.Stop()
			errc <- err
			return
		}
		if cfg.DVCR.Verify.Schedule != "" {
			logger.Info("storage verification scheduled", "schedule", cfg.DVCR.Verify.Schedule)
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
func recoverGC(ctx context.Context, collector *gc.Collector, logger *slog.Logger) {
	report := func(line string) { logger.Info("gc: " + line) }
	if err := collector.Recover(ctx, report); err != nil {
		// Serving the images matters more: what recovery did not finish
		// is harmless (unreferenced leftovers) and retried at next start.
		logger.Error("gc: recovering from an interrupted run failed, serving anyway", "err", err)
	}
	go func() {
		if _, err := collector.FreeLeftovers(ctx, report); err != nil {
			logger.Error("gc: freeing what an interrupted run left", "err", err)
		}
	}()
}
