package cluster

import (
	"context"
	"fmt"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordclient "k8s.io/client-go/kubernetes/typed/coordination/v1"
)

// Names of the Leases and their annotations and labels. LeaderLease is the
// one Lease DVCR elects its leader on, in every mode (Elector).
const (
	LeaderLease   = "dvcr-leader"
	GCLease       = "dvcr-gc"
	ReplicaPrefix = "dvcr-replica-"

	AnnotationWindow  = "dvcr.deckhouse.io/gc-window"
	AnnotationAck     = "dvcr.deckhouse.io/gc-ack"
	AnnotationAddress = "dvcr.deckhouse.io/address"
	LabelRole         = "dvcr.deckhouse.io/role"
	RoleReplica       = "replica"
)

// Settings are what every part of the coordination shares.
type Settings struct {
	Namespace     string
	Name          string // this replica
	LeaseDuration time.Duration
	RenewDeadline time.Duration
}

// retryPeriod is how often Leases are renewed: several tries fit in the
// renew deadline.
func (s Settings) retryPeriod() time.Duration { return s.RenewDeadline / 5 }

// margin is added to a Lease's expiry before its holder is taken for gone,
// for clock drift between replicas and writes finishing after fencing.
func (s Settings) margin() time.Duration { return s.LeaseDuration / 3 }

// expired reports whether a Lease's holder is gone: not renewed for its
// duration plus the margin.
func (s Settings) expired(l *coordv1.Lease, now time.Time) bool {
	if l.Spec.RenewTime == nil {
		return true
	}
	d := s.LeaseDuration
	if l.Spec.LeaseDurationSeconds != nil {
		d = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
	}
	return now.After(l.Spec.RenewTime.Add(d + s.margin()))
}

// renewLease creates or renews the Lease name held by holder and sets the
// given annotations ("" removes one).
func renewLease(ctx context.Context, leases coordclient.LeaseInterface, name, holder string, duration time.Duration, labels, annotations map[string]string) (*coordv1.Lease, error) {
	now := metav1.NewMicroTime(time.Now())
	seconds := int32(duration.Seconds())
	lease, err := leases.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		lease = &coordv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
		lease.Spec = coordv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &seconds, AcquireTime: &now, RenewTime: &now}
		setAnnotations(&lease.ObjectMeta, annotations)
		created, err := leases.Create(ctx, lease, metav1.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("creating Lease %s: %w", name, err)
		}
		return created, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading Lease %s: %w", name, err)
	}
	if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity != holder {
		lease.Spec.AcquireTime = &now
	}
	lease.Spec.HolderIdentity, lease.Spec.LeaseDurationSeconds, lease.Spec.RenewTime = &holder, &seconds, &now
	for k, v := range labels {
		if lease.Labels == nil {
			lease.Labels = map[string]string{}
		}
		lease.Labels[k] = v
	}
	setAnnotations(&lease.ObjectMeta, annotations)
	updated, err := leases.Update(ctx, lease, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("renewing Lease %s: %w", name, err)
	}
	return updated, nil
}

func setAnnotations(meta *metav1.ObjectMeta, annotations map[string]string) {
	for k, v := range annotations {
		if v == "" {
			delete(meta.Annotations, k)
			continue
		}
		if meta.Annotations == nil {
			meta.Annotations = map[string]string{}
		}
		meta.Annotations[k] = v
	}
}
