package provisioning

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/dvcr/dvcr/api/v1alpha2"
	"github.com/dvcr/dvcr/importer"
)

// finalWriteTimeout bounds the status write that ends an import.
const finalWriteTimeout = 30 * time.Second

// run imports one generation of an image; it owns the image's status while
// it runs and frees its slot when it ends.
func (c *Controller) run(ctx context.Context, j *job, k kindInfo, key types.NamespacedName, p *plan) {
	defer c.jobs.finish(j)
	defer p.cleanup()
	start := time.Now()
	tr := &tracker{}
	p.opts.Progress = tr.event
	obj := k.newObject()
	obj.SetName(key.Name)
	obj.SetNamespace(key.Namespace)
	c.recorder.Eventf(c.eventTarget(k, key, j.uid), corev1.EventTypeNormal, v1alpha2.ReasonProvisioning, "Importing from %s", redact(p.src))
	stop := c.reportProgress(ctx, j, k, key, tr, start)
	res, err := importer.Import(ctx, p.src, repositoryArg(k, key), p.opts)
	stop()
	if ctx.Err() != nil {
		return // cancelled: the spec changed or the resource went away; the reconciler goes on
	}
	c.finishImport(k, key, j, res, err, start, p.sourceUID)
}

// repositoryArg names the target as `dvcr import` takes it; the importer
// shortens it as the platform does.
func repositoryArg(k kindInfo, key types.NamespacedName) string {
	if key.Namespace == "" {
		return string(k.kind) + "/" + key.Name
	}
	return string(k.kind) + "/" + key.Namespace + "/" + key.Name
}

// finishImport writes Ready, Failed, or Provisioning with the retry.
func (c *Controller) finishImport(k kindInfo, key types.NamespacedName, j *job, res *importer.Result, err error, start time.Time, sourceUID string) {
	ctx, cancel := context.WithTimeout(context.Background(), finalWriteTimeout)
	defer cancel()
	target := c.eventTarget(k, key, j.uid)
	if err == nil {
		c.retries.forget(j.uid)
		werr := c.patchStatus(ctx, k, key, j.uid, func(obj v1alpha2.Image) {
			readyStatus(obj, res, c.targetURL(c.repository(k, obj)), j.version.observed(obj), time.Since(start), sourceUID)
		})
		if werr == nil {
			c.jobs.markReady(j.uid, j.version)
		}
		c.logWriteError(key, werr)
		c.recorder.Eventf(target, corev1.EventTypeNormal, v1alpha2.ReasonReady, "Image ready: %s, %d bytes stored, %d bytes unpacked", res.Format, res.StoredBytes, res.UnpackedBytes)
		return
	}
	wait := c.retries.failed(j.uid, j.version, permanent(err))
	msg := failureMessage(err, wait)
	reason := v1alpha2.ReasonProvisioningFailed
	werr := c.patchStatus(ctx, k, key, j.uid, func(obj v1alpha2.Image) {
		reason = attemptFailedStatus(obj, err, msg, j.version.observed(obj))
	})
	c.logWriteError(key, werr)
	c.recorder.Event(target, corev1.EventTypeWarning, reason, msg)
}

func (c *Controller) logWriteError(key types.NamespacedName, err error) {
	if err != nil {
		c.log.Error(err, "status write failed", "resource", key.String())
	}
}

// eventTarget is a reference to the resource for events.
func (c *Controller) eventTarget(k kindInfo, key types.NamespacedName, uid types.UID) *corev1.ObjectReference {
	kind := "ClusterVirtualImage"
	if k.kind == viKind.kind {
		kind = "VirtualImage"
	}
	return &corev1.ObjectReference{
		APIVersion: v1alpha2.GroupVersion.String(), Kind: kind,
		Namespace: key.Namespace, Name: key.Name, UID: uid,
	}
}

// redact drops credentials from a URL for messages.
func redact(src string) string {
	if u, err := url.Parse(src); err == nil && u.User != nil {
		return u.Redacted()
	}
	return src
}

// tracker keeps the latest progress of an import.
type tracker struct {
	mu        sync.Mutex
	bytes     int64
	total     int64
	postponed string // why the import waits (GC window), empty when it does not
}

// event is importer.Options.Progress.
func (t *tracker) event(e importer.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch e.Phase {
	case importer.PhaseWaiting:
		t.postponed = e.Message
	case importer.PhaseTransfer:
		t.bytes, t.total, t.postponed = e.Bytes, e.Total, ""
	case importer.PhaseDownload:
		t.postponed = ""
	}
}

func (t *tracker) snapshot() (bytes, total int64, postponed string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.bytes, t.total, t.postponed
}

// reportProgress writes Provisioning with the progress now and then, until
// the returned stop is called.
func (c *Controller) reportProgress(ctx context.Context, j *job, k kindInfo, key types.NamespacedName, tr *tracker, start time.Time) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		w := &progressWriter{c: c, j: j, k: k, key: key, start: start, lastAt: start}
		w.write(ctx, tr)
		t := time.NewTicker(c.opts.StatusInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				w.write(ctx, tr)
			}
		}
	}()
	return func() { close(done); <-finished }
}

// progressWriter writes the progress of one import, never backwards, and
// only when something shown changed.
type progressWriter struct {
	c         *Controller
	j         *job
	k         kindInfo
	key       types.NamespacedName
	start     time.Time
	written   bool
	pct       float64
	postponed string
	lastBytes int64
	lastAt    time.Time
}

func (w *progressWriter) write(ctx context.Context, tr *tracker) {
	bytes, total, postponed := tr.snapshot()
	pct := w.pct
	if total > 0 {
		pct = max(pct, float64(bytes)*100/float64(total))
	}
	if w.written && pct == w.pct && postponed == w.postponed {
		return
	}
	now := time.Now()
	cur, curBytes := speed(bytes-w.lastBytes, now.Sub(w.lastAt))
	avg, avgBytes := speed(bytes, now.Sub(w.start))
	speed := &v1alpha2.DownloadSpeed{Avg: avg, AvgBytes: avgBytes, Current: cur, CurrentBytes: curBytes}
	err := w.c.patchStatus(ctx, w.k, w.key, w.j.uid, func(obj v1alpha2.Image) {
		progressStatus(obj, w.j.version.observed(obj), pct, speed, postponed)
	})
	if err != nil {
		return // the next tick tries again
	}
	w.written, w.pct, w.postponed, w.lastBytes, w.lastAt = true, pct, postponed, bytes, now
}

// progressStatus fills the status of an import in progress: pct done (never
// less than the status showed for the same attempt), the speed, and why it
// waits if it is postponed.
func progressStatus(obj v1alpha2.Image, observed int64, pct float64, speed *v1alpha2.DownloadSpeed, postponed string) {
	st := obj.ImageStatus()
	prev := progressValue(st.Progress)
	if st.ObservedGeneration != observed || st.Phase != v1alpha2.PhaseProvisioning {
		prev = 0 // a new generation or a new attempt starts over
	}
	st.Phase = v1alpha2.PhaseProvisioning
	st.Progress = formatProgress(max(pct, prev))
	st.DownloadSpeed = speed
	st.ObservedGeneration = observed
	setCondition(obj, v1alpha2.ConditionDatasourceReady, metav1.ConditionTrue, v1alpha2.ReasonSourceAvailable, "")
	if postponed != "" {
		setCondition(obj, v1alpha2.ConditionReady, metav1.ConditionFalse, v1alpha2.ReasonProvisioningPostponed,
			fmt.Sprintf("DVCR is read-only for garbage collection; the import waits and resumes after it (%s)", postponed))
		return
	}
	setCondition(obj, v1alpha2.ConditionReady, metav1.ConditionFalse, v1alpha2.ReasonProvisioning, "Import in progress")
}
