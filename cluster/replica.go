package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordclient "k8s.io/client-go/kubernetes/typed/coordination/v1"

	"github.com/dvcr/dvcr/registry"
)

// Gate is the registry's write gate as a replica uses it (*registry.Gate):
// Close refuses writes until the hold is released; Drain waits for the
// writes in flight.
type Gate interface {
	Close(reason string) *registry.Hold
	Drain(ctx context.Context, timeout time.Duration) error
}

// Replica keeps this replica's Lease, follows the GC windows and fences the
// registry when it loses contact with the API server.
type Replica struct {
	Settings
	Leases       coordclient.LeaseInterface
	Gate         Gate
	ResetCaches  func() error
	DrainTimeout time.Duration
	// Logger gets one record per change of contact or GC window.
	Logger *slog.Logger
	// Address is the URL the other replicas reach this one at (uploads
	// are forwarded to the leader), published in the Lease.
	Address string

	mu     sync.Mutex
	lastOK time.Time
	fence  *registry.Hold // while out of contact, and until the first contact

	// Owned by the Run goroutine.
	window     string         // run of the GC window this replica is in
	windowHold *registry.Hold // its hold on the gate
	ack        string         // the run acknowledged in the Lease
	problem    string         // last error logged, to log each once
}

// NewReplica closes the gate at once: a replica takes writes only after it
// has renewed its Lease and read the GC state (Run).
func NewReplica(r *Replica) *Replica {
	if r.Logger == nil {
		r.Logger = slog.New(slog.DiscardHandler)
	}
	r.fence = r.Gate.Close("joining the replicas: renewing this replica's Lease and reading the GC state")
	return r
}

// Run renews the Lease, follows the GC state and fences until ctx ends.
func (r *Replica) Run(ctx context.Context) {
	changed := make(chan struct{}, 1)
	go r.watchGC(ctx, changed)
	drained := make(chan string, 1)
	renew := time.NewTicker(r.retryPeriod())
	defer renew.Stop()
	check := time.NewTicker(r.RenewDeadline / 20)
	defer check.Stop()
	r.beat(ctx, drained)
	for {
		select {
		case <-ctx.Done():
			return
		case <-renew.C:
			r.beat(ctx, drained)
		case <-changed:
			r.beat(ctx, drained)
		case run := <-drained:
			if run == r.window {
				r.ack = run
			}
			r.beat(ctx, drained)
		case <-check.C:
			r.fenceIfStale()
		}
	}
}

// beat reads the GC state, follows it and renews the Lease; after both
// succeeded the replica is in contact.
func (r *Replica) beat(ctx context.Context, drained chan<- string) {
	callCtx, cancel := context.WithTimeout(ctx, r.RenewDeadline/2)
	defer cancel()
	window, err := r.readWindow(callCtx)
	if err == nil {
		r.follow(ctx, window, drained)
		_, err = renewLease(callCtx, r.Leases, ReplicaPrefix+r.Name, r.Name, r.LeaseDuration,
			map[string]string{LabelRole: RoleReplica}, map[string]string{AnnotationAck: r.ack, AnnotationAddress: r.Address})
	}
	if err != nil {
		if msg := err.Error(); msg != r.problem && ctx.Err() == nil {
			r.problem = msg
			r.Logger.Warn("cluster: " + msg)
		}
		return
	}
	r.problem = ""
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastOK = time.Now()
	if r.fence != nil {
		r.fence.Release()
		r.fence = nil
		r.Logger.Info("cluster: replica in contact with the API server (Lease renewed)", "replica", r.Name, "lease", ReplicaPrefix+r.Name)
	}
}

// readWindow is the run of the GC window in force, "" for none. A window
// whose Lease expired was abandoned by a replica that died collecting.
func (r *Replica) readWindow(ctx context.Context) (string, error) {
	lease, err := r.Leases.Get(ctx, GCLease, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading the GC state (Lease %s): %w", GCLease, err)
	}
	run := lease.Annotations[AnnotationWindow]
	if run != "" && r.expired(lease, time.Now()) {
		if run != r.window || r.windowHold != nil {
			r.Logger.Warn("cluster: the GC window was abandoned (Lease expired); taking writes again", "run", run, "lease", GCLease)
		}
		return "", nil
	}
	return run, nil
}

// follow enters a new window (refuse writes now, acknowledge once the
// writes in flight are done) or leaves an ended one (drop caches, then take
// writes).
func (r *Replica) follow(ctx context.Context, window string, drained chan<- string) {
	switch {
	case window == r.window:
	case window != "":
		if r.windowHold == nil {
			r.windowHold = r.Gate.Close("garbage collection in progress on another replica (run " + window + ")")
		}
		r.window, r.ack = window, ""
		r.Logger.Info("cluster: GC window: refusing writes, waiting for writes in flight", "run", window)
		go func() {
			if err := r.Gate.Drain(ctx, r.DrainTimeout); err != nil {
				r.Logger.Warn("cluster: GC window: not acknowledged", "run", window, "err", err)
				return
			}
			select {
			case drained <- window:
			case <-ctx.Done():
			}
		}()
	default:
		if err := r.ResetCaches(); err != nil {
			r.Logger.Error("cluster: GC window ended but the caches could not be dropped; staying read-only", "run", r.window, "err", err)
			return
		}
		r.windowHold.Release()
		r.windowHold, r.window, r.ack = nil, "", ""
		r.Logger.Info("cluster: GC window ended: caches dropped, taking writes again")
	}
}

// fenceIfStale refuses writes when the last contact is older than the
// renew deadline.
func (r *Replica) fenceIfStale() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fence != nil || time.Since(r.lastOK) <= r.RenewDeadline {
		return
	}
	r.fence = r.Gate.Close(fmt.Sprintf("no contact with the Kubernetes API server for %s: this replica cannot renew its Lease or read the GC state", r.RenewDeadline))
	r.Logger.Warn("cluster: no contact with the API server: refusing writes until it is back", "for", r.RenewDeadline)
}
