package cluster

import (
	"context"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Elector elects the process that does what one process does for all (the
// scheduled collections and verifications, the provisioning controller:
// cli/serve/leader.go): client-go leader election on the Lease dvcr-leader.
// It is DVCR's only leader election: among replicas, and among the pods of
// a restart of a single registry with provisioning. Name is the identity
// written into the Lease.
type Elector struct {
	Settings
	Client kubernetes.Interface

	mu     sync.Mutex
	leader string
}

// Leader is the replica holding the Lease as last observed ("" unknown).
func (e *Elector) Leader() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leader
}

// IsLeader reports whether this replica leads.
func (e *Elector) IsLeader() bool { return e.Leader() == e.Name }

// Run campaigns until ctx ends. lead runs while this replica leads, with a
// context that ends when it stops leading; lost is called then (client-go
// does not campaign again in the same run: the caller restarts the
// process, as kube-controller-manager does).
func (e *Elector) Run(ctx context.Context, lead func(context.Context), lost func()) {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: LeaderLease, Namespace: e.Namespace},
		Client:     e.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: e.Name},
	}
	leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   e.LeaseDuration,
		RenewDeadline:   e.RenewDeadline,
		RetryPeriod:     max(e.retryPeriod(), 100*time.Millisecond),
		ReleaseOnCancel: true,
		Name:            "dvcr",
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: lead,
			OnStoppedLeading: lost,
			OnNewLeader: func(identity string) {
				e.mu.Lock()
				e.leader = identity
				e.mu.Unlock()
			},
		},
	})
}
