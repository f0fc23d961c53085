package serve

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"

	"k8s.io/client-go/kubernetes"
	coordclient "k8s.io/client-go/kubernetes/typed/coordination/v1"

	"github.com/dvcr/dvcr/cluster"
	"github.com/dvcr/dvcr/config"
	"github.com/dvcr/dvcr/gc"
	"github.com/dvcr/dvcr/kube"
	"github.com/dvcr/dvcr/registry"
)

// replicaSet is this process's part of the replicas (dvcr.cluster).
type replicaSet struct {
	settings cluster.Settings
	replica  *cluster.Replica
	elector  *cluster.Elector
	leases   coordclient.LeaseInterface
	logger   *slog.Logger
}

// newReplicaSet joins the replicas: the gate stays closed until this
// replica has renewed its Lease and read the GC state, and the collector
// opens its windows on every replica. It returns nil when cluster mode is
// off. start runs it.
func newReplicaSet(cfg *config.Config, srv *registry.Server, collector *gc.Collector, addr net.Addr, logger *slog.Logger) (*replicaSet, error) {
	c := cfg.DVCR.Cluster
	if !c.Enabled {
		return nil, nil
	}
	// Two clients, so that the collector's polling never delays this
	// replica's renewals behind client-go's rate limiter.
	client, err := leaseClient("dvcr.cluster.enabled")
	if err != nil {
		return nil, err
	}
	coordClient, err := leaseClient("dvcr.cluster.enabled")
	if err != nil {
		return nil, err
	}
	name, err := replicaName()
	if err != nil {
		return nil, fmt.Errorf("dvcr.cluster: %w", err)
	}
	s := cluster.Settings{Namespace: c.Namespace, Name: name, LeaseDuration: c.LeaseDuration, RenewDeadline: c.RenewDeadline}
	rs := &replicaSet{
		settings: s,
		leases:   client.CoordinationV1().Leases(c.Namespace),
		logger:   logger,
	}
	rs.replica = cluster.NewReplica(&cluster.Replica{
		Settings: s, Leases: rs.leases, Gate: srv.Gate(), ResetCaches: srv.ResetCaches,
		DrainTimeout: cfg.DVCR.GC.DrainTimeout, Logger: logger, Address: advertisedURL(cfg, addr),
	})
	// The wait for acknowledgments leaves each replica its drain timeout,
	// and a replica that died its Lease's expiry and margin.
	coordinator := &cluster.Coordinator{Settings: s, Leases: coordClient.CoordinationV1().Leases(c.Namespace), AckTimeout: cfg.DVCR.GC.DrainTimeout + 2*c.LeaseDuration}
	collector.Replicas = replicaWindows{coordinator}
	rs.elector = &cluster.Elector{Settings: s, Client: client}
	return rs, nil
}

// start renews this replica's Lease and follows the GC windows; the
// campaign for dvcr-leader is startLeading's (leader.go).
func (rs *replicaSet) start(ctx context.Context) {
	go rs.replica.Run(ctx)
	rs.logger.Info("replica: Leases", "replica", rs.settings.Name, "namespace", rs.settings.Namespace,
		"duration", rs.settings.LeaseDuration, "renewDeadline", rs.settings.RenewDeadline, "address", rs.replica.Address)
}

// advertisedURL is where the other replicas reach this one: $POD_IP (the
// chart sets it) or the listener's host, and the listener's port.
func advertisedURL(cfg *config.Config, addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return ""
	}
	if ip := os.Getenv("POD_IP"); ip != "" {
		host = ip
	} else if host == "" || host == "0.0.0.0" || host == "::" {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	scheme := "http"
	if cfg.Registry.HTTP.TLS.Certificate != "" {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// leaseClient is a client for the Leases, with a rate limit that leaves
// room for renewals every retry period and the collector's polling. Its
// errors name setting, the configuration that needs it.
func leaseClient(setting string) (kubernetes.Interface, error) {
	rc, err := kube.RESTConfig("", kube.NoTimeout)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", setting, err)
	}
	kube.RaiseRateLimit(rc)
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", setting, err)
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
		return "", fmt.Errorf("no POD_NAME and no host name: %w", err)
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
