package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	coordclient "k8s.io/client-go/kubernetes/typed/coordination/v1"
)

// ErrNotAcknowledged: a replica that renews its Lease did not acknowledge
// the window in time; the run is aborted, never continued without it.
var ErrNotAcknowledged = errors.New("a live replica did not acknowledge the GC window")

// Coordinator opens GC windows across the replicas; it runs on the leader.
type Coordinator struct {
	Settings
	Leases coordclient.LeaseInterface
	// AckTimeout bounds the wait for acknowledgments; it must leave a
	// replica time to drain its writes.
	AckTimeout time.Duration
}

// Window is an open GC window.
type Window struct {
	c      *Coordinator
	run    string
	lost   chan struct{}
	stop   context.CancelFunc
	wg     sync.WaitGroup
	closed sync.Once
}

// Lost is closed when the window's Lease could not be renewed for the renew
// deadline: the replicas will soon take it for abandoned, so the collector
// must stop deleting.
func (w *Window) Lost() <-chan struct{} { return w.lost }

// Open publishes the window of run and returns once every live replica has
// acknowledged it. On error nothing may be deleted; the window is closed.
func (c *Coordinator) Open(ctx context.Context, run string, progress func(string)) (*Window, error) {
	if _, err := renewLease(ctx, c.Leases, GCLease, c.Name, c.LeaseDuration, nil, map[string]string{AnnotationWindow: run}); err != nil {
		return nil, fmt.Errorf("publishing the GC window: %w", err)
	}
	hbCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	w := &Window{c: c, run: run, lost: make(chan struct{}), stop: stop}
	w.wg.Add(1)
	go w.heartbeat(hbCtx)
	if err := c.waitAcks(ctx, run, progress); err != nil {
		_ = w.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return w, nil
}

// waitAcks polls the replicas' Leases until each live one acknowledged run.
func (c *Coordinator) waitAcks(ctx context.Context, run string, progress func(string)) error {
	deadline := time.Now().Add(c.AckTimeout)
	gone := map[string]bool{}
	selector := labels.SelectorFromSet(labels.Set{LabelRole: RoleReplica}).String()
	for {
		list, err := c.Leases.List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return fmt.Errorf("listing the replicas' Leases: %w", err)
		}
		var pending, acked []string
		now := time.Now()
		for i := range list.Items {
			l := &list.Items[i]
			name := strings.TrimPrefix(l.Name, ReplicaPrefix)
			switch {
			case l.Annotations[AnnotationAck] == run:
				acked = append(acked, name)
			case c.expired(l, now):
				if !gone[name] {
					gone[name] = true
					progress(fmt.Sprintf("replica %s is gone (its Lease expired): not waited for", name))
				}
			default:
				pending = append(pending, name)
			}
		}
		if len(pending) == 0 {
			slices.Sort(acked)
			progress(fmt.Sprintf("every live replica refuses writes: %s", strings.Join(acked, ", ")))
			return nil
		}
		if now.After(deadline) {
			return fmt.Errorf("%w within %s: %s (it renews its Lease, so it is alive; the run is aborted rather than run without it)",
				ErrNotAcknowledged, c.AckTimeout, strings.Join(pending, ", "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// heartbeat renews the window's Lease; after the renew deadline without
// success the window is lost.
func (w *Window) heartbeat(ctx context.Context) {
	defer w.wg.Done()
	last := time.Now()
	tick := time.NewTicker(w.c.retryPeriod())
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		callCtx, cancel := context.WithTimeout(ctx, w.c.RenewDeadline/2)
		_, err := renewLease(callCtx, w.c.Leases, GCLease, w.c.Name, w.c.LeaseDuration, nil, map[string]string{AnnotationWindow: w.run})
		cancel()
		if err == nil {
			last = time.Now()
			continue
		}
		if time.Since(last) > w.c.RenewDeadline {
			close(w.lost)
			return
		}
	}
}

// Close ends the window: the replicas drop their caches and take writes.
// If it cannot be written, the replicas end the window themselves when its
// Lease expires.
func (w *Window) Close(ctx context.Context) error {
	var err error
	w.closed.Do(func() {
		w.stop()
		w.wg.Wait()
		callCtx, cancel := context.WithTimeout(ctx, w.c.RenewDeadline)
		defer cancel()
		for attempt := 0; attempt < 3; attempt++ {
			if _, err = renewLease(callCtx, w.c.Leases, GCLease, w.c.Name, w.c.LeaseDuration, nil, map[string]string{AnnotationWindow: ""}); err == nil {
				return
			}
		}
		err = fmt.Errorf("closing the GC window (the replicas end it when Lease %s expires): %w", GCLease, err)
	})
	return err
}
