// The replica's watch on the GC state.

package cluster

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	coordclient "k8s.io/client-go/kubernetes/typed/coordination/v1"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/klog/v2"
)

// watchGC signals changed on every change of the dvcr-gc Lease, so that a
// window is entered within a round trip, not a retry period (the beat
// reads the Lease every retry period anyway: the watch only makes it
// sooner).
//
// A RetryWatcher follows the Lease from the resource version of a list,
// and when a watch ends or fails it watches again from the last version it
// saw. It cannot go on once that version is compacted away (410 Gone), nor
// when the watch is refused (forbidden): it ends, and after a retry period
// the Lease is listed again and a new watcher starts from there. Each list
// signals a change too, for what changed while nothing watched. Failing
// lists are retried every retry period. Nothing is logged: losing contact
// is the beat's to report.
func (r *Replica) watchGC(ctx context.Context, changed chan<- struct{}) {
	ctx = klog.NewContext(ctx, logr.Discard()) // the RetryWatcher logs through klog
	lw := gcLeaseWatcher{leases: r.Leases}
	for {
		if w, err := lw.start(ctx); err == nil {
			signal(changed)
			for range w.ResultChan() {
				signal(changed)
			}
			w.Stop()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(r.retryPeriod()):
		}
	}
}

// signal tells the Run loop something changed, unless it already knows.
func signal(changed chan<- struct{}) {
	select {
	case changed <- struct{}{}:
	default:
	}
}

var gcLeaseSelector = fields.OneTermEqualSelector("metadata.name", GCLease).String()

// gcLeaseWatcher lists and watches the dvcr-gc Lease.
type gcLeaseWatcher struct {
	leases coordclient.LeaseInterface
}

// start lists the Lease and watches it from the list's resource version.
func (lw gcLeaseWatcher) start(ctx context.Context) (*watchtools.RetryWatcher, error) {
	list, err := lw.leases.List(ctx, metav1.ListOptions{FieldSelector: gcLeaseSelector})
	if err != nil {
		return nil, err
	}
	return watchtools.NewRetryWatcherWithContext(ctx, list.ResourceVersion, lw)
}

// WatchWithContext is the RetryWatcher's watch. A watch refused with 410
// Gone is handed over as an error event: refused, the RetryWatcher would
// retry the same expired version for ever; on a 410 event it ends.
func (lw gcLeaseWatcher) WatchWithContext(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.FieldSelector = gcLeaseSelector
	w, err := lw.leases.Watch(ctx, opts)
	var status apierrors.APIStatus
	if (apierrors.IsResourceExpired(err) || apierrors.IsGone(err)) && errors.As(err, &status) {
		gone := watch.NewFakeWithChanSize(1, false)
		st := status.Status()
		st.Code = http.StatusGone
		gone.Error(&st)
		return gone, nil
	}
	return w, err
}
