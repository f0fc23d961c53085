package provisioning

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/dvcr/dvcr/api/v1alpha2"
)

// Waits between looks at an image that cannot go on yet.
const (
	slotWait        = 2 * time.Second  // all import slots busy
	sourceWait      = 5 * time.Second  // an ObjectRef source not Ready yet
	runningWait     = 2 * time.Second  // an import running: look again once it may have ended
	readyCheckEvery = 10 * time.Minute // a Ready image's data still in DVCR
)

// reconciler handles one kind.
type reconciler struct {
	c    *Controller
	kind kindInfo
}

// Reconcile brings one image towards Ready.
func (r *reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	key := objectKey{kind: r.kind.kind, namespace: req.Namespace, name: req.Name}
	obj := r.kind.newObject()
	if err := r.c.client.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			r.c.forget(key, "")
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !obj.GetDeletionTimestamp().IsZero() {
		return ctrl.Result{}, r.terminating(ctx, key, obj)
	}
	if !handledHere(obj) {
		return ctrl.Result{}, nil // the platform's disk controller provisions it
	}
	st := obj.ImageStatus()
	if st.Phase == v1alpha2.PhaseReady {
		return r.ready(ctx, key, obj)
	}
	version := versionOf(obj)
	if r.c.jobs.readyNotSeen(obj.GetUID(), version) {
		return ctrl.Result{RequeueAfter: time.Second}, nil // imported; the cache has not caught up
	}
	if j := r.c.jobs.get(key); j != nil {
		if j.uid == obj.GetUID() && j.version.same(version) {
			// Running; it reports for itself. Its last status write (Failed or
			// Provisioning, to be retried) comes before it frees its slot, so the event of
			// that write finds it still here: look again later.
			return ctrl.Result{RequeueAfter: runningWait}, nil
		}
		r.c.jobs.stop(key) // the spec changed before Ready: start over
	}
	// A failed generation waits for its retry even when the cache does not
	// show the Failed status yet (it may still show the Provisioning the
	// failed import wrote first): the phase alone would start it at once.
	if due, wait := r.c.retries.due(obj.GetUID(), version); !due {
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	if obj.ImageSpec().DataSource.Type == v1alpha2.DataSourceUpload {
		return r.c.waitForUpload(ctx, r.kind, key, obj)
	}
	return r.startImport(ctx, key, obj)
}

// startImport plans the import and starts it when a slot is free.
func (r *reconciler) startImport(ctx context.Context, key objectKey, obj v1alpha2.Image) (ctrl.Result, error) {
	nn := types.NamespacedName{Namespace: obj.GetNamespace(), Name: obj.GetName()}
	p, err := r.c.planImport(ctx, obj)
	switch {
	case errors.Is(err, errSourceNotReady):
		return ctrl.Result{RequeueAfter: sourceWait}, r.pending(ctx, nn, obj, v1alpha2.ReasonSourceNotReady, err.Error())
	case err != nil:
		wait := r.c.retries.failed(obj.GetUID(), versionOf(obj), permanent(err))
		msg := failureMessage(err, wait)
		return ctrl.Result{RequeueAfter: wait}, r.c.patchStatus(ctx, r.kind, nn, obj.GetUID(), func(o v1alpha2.Image) {
			attemptFailedStatus(o, err, msg, o.GetGeneration())
		})
	}
	j, jctx, ok := r.c.jobs.start(r.c.mgrContext(), key, obj.GetUID(), versionOf(obj), true)
	if !ok {
		p.cleanup()
		r.c.waiting.add(key)
		msg := fmt.Sprintf("%d imports are running (dvcr.provisioning.concurrency); this one starts when one ends", r.c.opts.Concurrency)
		return ctrl.Result{RequeueAfter: slotWait}, r.pending(ctx, nn, obj, v1alpha2.ReasonQueued, msg)
	}
	go r.c.run(jctx, j, r.kind, nn, p)
	return ctrl.Result{}, nil
}

// pending writes Pending with why, unless it is already what the status says.
func (r *reconciler) pending(ctx context.Context, nn types.NamespacedName, obj v1alpha2.Image, reason, msg string) error {
	if obj.ImageStatus().Phase == v1alpha2.PhasePending && readyReason(obj) == reason {
		return nil
	}
	r.c.recorder.Event(obj, corev1.EventTypeNormal, reason, msg)
	return r.c.patchStatus(ctx, r.kind, nn, obj.GetUID(), func(o v1alpha2.Image) {
		o.ImageStatus().Phase = v1alpha2.PhasePending
		o.ImageStatus().ObservedGeneration = o.GetGeneration()
		dsStatus := metav1.ConditionTrue
		if reason == v1alpha2.ReasonSourceNotReady {
			dsStatus = metav1.ConditionFalse
		}
		setCondition(o, v1alpha2.ConditionDatasourceReady, dsStatus, reason, msg)
		setCondition(o, v1alpha2.ConditionReady, metav1.ConditionFalse, reason, msg)
	})
}

// readyReason is the reason of the Ready condition, "" without one.
func readyReason(obj v1alpha2.Image) string {
	if c := meta.FindStatusCondition(obj.ImageStatus().Conditions, v1alpha2.ConditionReady); c != nil {
		return c.Reason
	}
	return ""
}

// terminating marks a resource being deleted and stops its import.
func (r *reconciler) terminating(ctx context.Context, key objectKey, obj v1alpha2.Image) error {
	r.c.forget(key, obj.GetUID())
	if obj.ImageStatus().Phase == v1alpha2.PhaseTerminating {
		return nil
	}
	nn := types.NamespacedName{Namespace: obj.GetNamespace(), Name: obj.GetName()}
	err := r.c.patchStatus(ctx, r.kind, nn, obj.GetUID(), func(o v1alpha2.Image) {
		o.ImageStatus().Phase = v1alpha2.PhaseTerminating
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// ready leaves a Ready image alone: a spec changed after Ready is reported,
// not acted on; and now and then it checks the image is still in DVCR.
func (r *reconciler) ready(ctx context.Context, key objectKey, obj v1alpha2.Image) (ctrl.Result, error) {
	r.c.jobs.seenReady(obj.GetUID())
	nn := types.NamespacedName{Namespace: obj.GetNamespace(), Name: obj.GetName()}
	st := obj.ImageStatus()
	if obj.GetGeneration() != st.ObservedGeneration && readyReason(obj) != v1alpha2.ReasonSpecImmutable {
		msg := fmt.Sprintf("the spec changed after the image became Ready (generation %d, image of generation %d); the change is ignored: create a new image instead",
			obj.GetGeneration(), st.ObservedGeneration)
		r.c.recorder.Event(obj, "Warning", v1alpha2.ReasonSpecImmutable, msg)
		return ctrl.Result{RequeueAfter: readyCheckEvery}, r.c.patchStatus(ctx, r.kind, nn, obj.GetUID(), func(o v1alpha2.Image) {
			setCondition(o, v1alpha2.ConditionReady, metav1.ConditionTrue, v1alpha2.ReasonSpecImmutable, msg)
		})
	}
	lost, err := r.c.imageLost(ctx, r.c.repository(r.kind, obj))
	if err != nil || !lost {
		return ctrl.Result{RequeueAfter: readyCheckEvery}, nil
	}
	msg := "the image is no longer in DVCR (deleted from the registry?); delete and create the resource again to import it anew"
	r.c.retries.failed(obj.GetUID(), versionOf(obj), true)
	r.c.recorder.Event(obj, "Warning", v1alpha2.ReasonImageLost, msg)
	return ctrl.Result{}, r.c.patchStatus(ctx, r.kind, nn, obj.GetUID(), func(o v1alpha2.Image) {
		failedStatus(o, v1alpha2.ReasonImageLost, msg, st.ObservedGeneration)
	})
}
