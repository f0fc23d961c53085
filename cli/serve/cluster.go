package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"k8s.io/client-go/kubernetes"

	"github.com/dvcr/dvcr/cluster"
	"github.com/dvcr/dvcr/config"
	"github.com/dvcr/dvcr/gc"
	"github.com/dvcr/dvcr/registry"
)

// errLostLeadership ends dvcr serve: client-go does not campaign again in
// the same run, so the replica restarts and follows.
var errLostLeadership = errors.New("lost the dvcr-leader Lease: exiting so that this replica restarts as a follower")

// startCluster joins the replicas (dvcr.cluster): the gate stays closed
// until this replica has renewed its Lease and read the GC state, the
// collector opens its windows on every replica, and lead runs while this
// replica holds dvcr-leader. It returns nil when cluster mode is off.
func startCluster(ctx context.Context, cfg *config.Config, srv *registry.Server, collector *gc.Collector, log io.Writer, errc chan<- error, lead func(context.Context)) (*cluster.Elector, error) {
	c := cfg.DVCR.Cluster
	if !c.Enabled {
		return nil, nil
	}
	// Two clients, so that the collector's polling never delays this
	// replica's renewals behind client-go's rate limiter.
	client, err := clusterClient()
	if err != nil {
		return nil, err
	}
	coordClient, err := clusterClient()
	if err != nil {
		return nil, err
	}
	name, err := replicaName()
	if err != nil {
		return nil, err
	}
	s := cluster.Settings{Namespace: c.Namespace, Name: name, LeaseDuration: c.LeaseDuration, RenewDeadline: c.RenewDeadline}
	leases := client.CoordinationV1().Leases(c.Namespace)
	logf := func(format string, args ...any) { fmt.Fprintf(log, "dvcr serve: "+format+"\n", args...) }
	replica := cluster.NewReplica(&cluster.Replica{
		Settings: s, Leases: leases, Gate: srv.Gate(), ResetCaches: srv.ResetCaches,
		DrainTimeout: cfg.DVCR.GC.DrainTimeout, Log: logf,
	})
	go replica.Run(ctx)
	// The wait for acknowledgments leaves each replica its drain timeout,
	// and a replica that died its Lease's expiry and margin.
	coordinator := &cluster.Coordinator{Settings: s, Leases: coordClient.CoordinationV1().Leases(c.Namespace), AckTimeout: cfg.DVCR.GC.DrainTimeout + 2*c.LeaseDuration}
	collector.Replicas = replicaWindows{coordinator}
	elector := &cluster.Elector{Settings: s, Client: client}
	go elector.Run(ctx, lead, func() {
		if ctx.Err() == nil {
			errc <- errLostLeadership
		}
	})
	logf("replica %s: Leases in namespace %s (duration %s, renew deadline %s)", name, c.Namespace, c.LeaseDuration, c.RenewDeadline)
	return elector, nil
}

// clusterClient is a client for the Leases, with a rate limit that leaves
// room for renewals every retry period and the collector's polling.
func clusterClient() (kubernetes.Interface, error) {
	rc, err := gc.RESTConfig("", 0) // no client timeout: it would cut the watch
	if err != nil {
		return nil, fmt.Errorf("dvcr.cluster.enabled: %w", err)
	}
	rc.QPS, rc.Burst = 50, 100
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("dvcr.cluster.enabled: %w", err)
	}
	return client, nil
}

// replicaName is $POD_NAME (the chart sets it), else the host name.
func replicaName() (string, error) {
	if name := os.Getenv("POD_NAME"); name != "" {
		return name, nil
	}
	name, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("dvcr.cluster: no POD_NAME and no host name: %w", err)
	}
	return name, nil
}

// replicaWindows adapts the coordinator to the collector.
type replicaWindows struct{ c *cluster.Coordinator }

func (r replicaWindows) Open(ctx context.Context, run string, progress func(string)) (gc.ReplicaWindow, error) {
	w, err := r.c.Open(ctx, run, progress)
	if err != nil {
		return nil, err
	}
	return w, nil
}
