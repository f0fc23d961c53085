package provisioning

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/dvcr/dvcr/api/v1alpha2"
	"github.com/dvcr/dvcr/importer"
	"github.com/dvcr/dvcr/importer/registryclient"
	"github.com/dvcr/dvcr/importer/source"
	"github.com/dvcr/dvcr/provisioning/upload"
)

// tokens maps each waiting image to its upload token, to retire it.
type tokens struct {
	mu    sync.Mutex
	byKey map[objectKey]string
}

// waitForUpload publishes the upload URLs and waits for the upload, up to
// dvcr.provisioning.upload.timeout.
func (c *Controller) waitForUpload(ctx context.Context, k kindInfo, key objectKey, obj v1alpha2.Image) (ctrl.Result, error) {
	nn := types.NamespacedName{Namespace: obj.GetNamespace(), Name: obj.GetName()}
	if c.opts.Uploads == nil {
		return ctrl.Result{}, c.patchStatus(ctx, k, nn, obj.GetUID(), func(o v1alpha2.Image) {
			failedStatus(o, v1alpha2.ReasonProvisioningFailed, "the upload endpoint is not enabled in this DVCR", o.GetGeneration())
		})
	}
	st := obj.ImageStatus()
	waiting := st.Phase == v1alpha2.PhaseWaitForUserUpload && st.ObservedGeneration == obj.GetGeneration()
	if since := waitingSince(obj); waiting && !since.IsZero() {
		if left := c.opts.UploadTimeout - time.Since(since); left <= 0 {
			return ctrl.Result{}, c.uploadExpired(ctx, k, key, nn, obj)
		}
	}
	token, err := c.uploadToken(key, st.ImageUploadURLs)
	if err != nil {
		return ctrl.Result{}, err
	}
	c.opts.Uploads.Register(token, &receiver{c: c, k: k, key: key, nn: nn, uid: obj.GetUID(), version: versionOf(obj)})
	urls := c.uploadURLs(token)
	if !waiting || st.ImageUploadURLs == nil || *st.ImageUploadURLs != *urls {
		if st.Phase != v1alpha2.PhaseWaitForUserUpload {
			// The URLs (and their token) are in the status only: events are
			// read more widely.
			c.recorder.Event(obj, corev1.EventTypeNormal, v1alpha2.ReasonWaitForUserUpload, "Waiting for the upload to the URLs in status.imageUploadURLs")
		}
		err = c.patchStatus(ctx, k, nn, obj.GetUID(), func(o v1alpha2.Image) {
			s := o.ImageStatus()
			s.Phase = v1alpha2.PhaseWaitForUserUpload
			s.ImageUploadURLs = urls
			s.Progress = ""
			s.ObservedGeneration = o.GetGeneration()
			msg := fmt.Sprintf("Waiting for the upload: curl -T FILE %s", urls.InCluster)
			setCondition(o, v1alpha2.ConditionDatasourceReady, metav1.ConditionFalse, v1alpha2.ReasonWaitForUserUpload, msg)
			setCondition(o, v1alpha2.ConditionReady, metav1.ConditionFalse, v1alpha2.ReasonWaitForUserUpload, msg)
		})
	}
	return ctrl.Result{RequeueAfter: c.opts.UploadTimeout - time.Since(waitingSinceOrNow(obj))}, err
}

// uploadToken keeps the token already published in the status (it survives
// a restart that way), or makes a new one.
func (c *Controller) uploadToken(key objectKey, urls *v1alpha2.UploadURLs) (string, error) {
	c.tokens.mu.Lock()
	defer c.tokens.mu.Unlock()
	if t, ok := c.tokens.byKey[key]; ok {
		return t, nil
	}
	token := ""
	if urls != nil && urls.InCluster != "" {
		token = urls.InCluster[strings.LastIndex(urls.InCluster, "/")+1:]
	}
	if token == "" {
		t, err := upload.NewToken()
		if err != nil {
			return "", err
		}
		token = t
	}
	c.tokens.byKey[key] = token
	return token, nil
}

func (c *Controller) uploadURLs(token string) *v1alpha2.UploadURLs {
	urls := &v1alpha2.UploadURLs{InCluster: c.opts.InClusterURL + "/" + token}
	if c.opts.ExternalURL != "" {
		urls.External = c.opts.ExternalURL + "/" + token
	}
	return urls
}

// waitingSince is when the image started waiting for its upload.
func waitingSince(obj v1alpha2.Image) time.Time {
	cond := meta.FindStatusCondition(obj.ImageStatus().Conditions, v1alpha2.ConditionDatasourceReady)
	if cond == nil || cond.Reason != v1alpha2.ReasonWaitForUserUpload {
		return time.Time{}
	}
	return cond.LastTransitionTime.Time
}

func waitingSinceOrNow(obj v1alpha2.Image) time.Time {
	if t := waitingSince(obj); !t.IsZero() {
		return t
	}
	return time.Now()
}

// uploadExpired fails an image nobody uploaded to in time.
func (c *Controller) uploadExpired(ctx context.Context, k kindInfo, key objectKey, nn types.NamespacedName, obj v1alpha2.Image) error {
	c.retireToken(key)
	msg := fmt.Sprintf("no upload arrived within %s (dvcr.provisioning.upload.timeout); change the spec or recreate the resource to get a new upload URL", c.opts.UploadTimeout)
	c.retries.failed(obj.GetUID(), versionOf(obj), true)
	c.recorder.Event(obj, "Warning", v1alpha2.ReasonWaitForUserUploadTimeout, msg)
	return c.patchStatus(ctx, k, nn, obj.GetUID(), func(o v1alpha2.Image) {
		failedStatus(o, v1alpha2.ReasonWaitForUserUploadTimeout, msg, o.GetGeneration())
		o.ImageStatus().ImageUploadURLs = nil
	})
}

// retireToken makes the upload URL of key answer 404.
func (c *Controller) retireToken(key objectKey) {
	c.tokens.mu.Lock()
	token, ok := c.tokens.byKey[key]
	delete(c.tokens.byKey, key)
	c.tokens.mu.Unlock()
	if ok && c.opts.Uploads != nil {
		c.opts.Uploads.Unregister(token)
	}
}

// interrupted puts an image whose upload import was cut short (the
// uploader went away) back to waiting for an upload.
func (r *receiver) interrupted() {
	ctx, cancel := context.WithTimeout(context.Background(), finalWriteTimeout)
	defer cancel()
	err := r.c.patchStatus(ctx, r.k, r.nn, r.uid, func(o v1alpha2.Image) {
		o.ImageStatus().Phase = v1alpha2.PhaseWaitForUserUpload
		o.ImageStatus().Progress = ""
		msg := "The upload was interrupted before its import finished; upload again"
		setCondition(o, v1alpha2.ConditionReady, metav1.ConditionFalse, v1alpha2.ReasonWaitForUserUpload, msg)
	})
	r.c.logWriteError(r.nn, err)
}

// receiver imports a complete upload for one spec version of an image.
type receiver struct {
	c       *Controller
	k       kindInfo
	key     objectKey
	nn      types.NamespacedName
	uid     types.UID
	version specVersion
}

// Receive implements upload.Receiver: it imports the spooled file and
// answers the uploader with the outcome.
func (r *receiver) Receive(ctx context.Context, f *os.File, size int64, name string) error {
	j, jctx, _ := r.c.jobs.start(ctx, r.key, r.uid, r.version, false)
	start := time.Now()
	tr := &tracker{}
	opts := r.c.importOptions()
	opts.Progress = tr.event
	stop := r.c.reportProgress(jctx, j, r.k, r.nn, tr, start)
	res, err := importer.ImportStream(jctx, &source.Stream{Body: f, Name: name, Size: size}, repositoryArg(r.k, r.nn), opts)
	stop()
	r.c.jobs.finish(j)
	if ctx.Err() != nil {
		r.interrupted()
		return ctx.Err()
	}
	r.c.finishImport(r.k, r.nn, j, res, err, start, "")
	switch {
	case err == nil:
		r.c.retireToken(r.key)
		return nil
	case errors.Is(err, registryclient.ErrUnavailable):
		return fmt.Errorf("%w: %w", upload.ErrUnavailable, err)
	case errors.Is(err, registryclient.ErrStorageFull):
		// The uploader reads why in the answer: the volume is full.
		return upload.WithStatus(err, http.StatusInsufficientStorage)
	case permanent(err):
		r.c.retireToken(r.key)
		return fmt.Errorf("%w: %w", upload.ErrRefused, err)
	}
	return err
}
