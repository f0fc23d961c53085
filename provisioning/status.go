package provisioning

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/dvcr/dvcr/api/v1alpha2"
	"github.com/dvcr/dvcr/importer"
	"github.com/dvcr/dvcr/units"
)

// errReplaced: the resource was deleted and created again under the same
// name while an import of the old one ran.
var errReplaced = errors.New("resource replaced")

// patchStatus applies mutate to the resource's status and writes the change
// through the status subresource (a CRD without one gets a plain patch).
// With uid set, a resource of another UID is left alone.
//
// The resource is read from the API server, not the cache, and the patch
// carries its resourceVersion (retried on a conflict): a merge patch is the
// difference from what was read, so from a stale copy it would leave out a
// field that only looks unchanged (a Failed phase over the Provisioning
// written a moment before would not be sent).
func (c *Controller) patchStatus(ctx context.Context, k kindInfo, key types.NamespacedName, uid types.UID, mutate func(v1alpha2.Image)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		obj := k.newObject()
		if err := c.reader.Get(ctx, key, obj); err != nil {
			return err
		}
		if uid != "" && obj.GetUID() != uid {
			return errReplaced
		}
		orig := obj.DeepCopyObject().(v1alpha2.Image)
		mutate(obj)
		if equality.Semantic.DeepEqual(orig.ImageStatus(), obj.ImageStatus()) {
			return nil // nothing to write
		}
		patch := client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})
		err := c.client.Status().Patch(ctx, obj, patch)
		if apierrors.IsNotFound(err) && obj.GetUID() != "" {
			observeOwnWrite(obj, orig.GetGeneration())
			err = c.client.Patch(ctx, obj, patch)
		}
		return err
	})
}

// observeOwnWrite prepares a status write without the status subresource,
// which moves metadata.generation from gen to gen+1 (the API server counts
// any change outside metadata, and the optimistic lock lets no other change
// in between): what observes gen observes gen+1, so that observedGeneration
// equals the generation after the write, as it does with the subresource,
// and a spec change still shows as a generation ahead of it.
func observeOwnWrite(obj v1alpha2.Image, gen int64) {
	st := obj.ImageStatus()
	if st.ObservedGeneration == gen {
		st.ObservedGeneration = gen + 1
	}
	for i := range st.Conditions {
		if st.Conditions[i].ObservedGeneration == gen {
			st.Conditions[i].ObservedGeneration = gen + 1
		}
	}
}

// setCondition sets one condition of the image's status.
func setCondition(obj v1alpha2.Image, typ string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&obj.ImageStatus().Conditions, metav1.Condition{
		Type:               typ,
		Status:             status,
		Reason:             reason,
		Message:            msg,
		ObservedGeneration: obj.GetGeneration(),
	})
}

// formatProgress renders a share as the platform does: "66.5%".
func formatProgress(pct float64) string {
	return fmt.Sprintf("%.1f%%", min(max(pct, 0), 100))
}

// progressValue reads "66.5%" back; 0 when absent or odd.
func progressValue(s string) float64 {
	if len(s) == 0 || s[len(s)-1] != '%' {
		return 0
	}
	v, err := strconv.ParseFloat(s[:len(s)-1], 64)
	if err != nil {
		return 0
	}
	return v
}

// sizeOf is status.size of an imported image.
func sizeOf(res *importer.Result) *v1alpha2.ImageSize {
	return &v1alpha2.ImageSize{
		Stored:        units.FormatBytes(uint64(max(res.StoredBytes, 0))),
		StoredBytes:   strconv.FormatInt(res.StoredBytes, 10),
		Unpacked:      units.FormatBytes(uint64(max(res.UnpackedBytes, 0))),
		UnpackedBytes: strconv.FormatInt(res.UnpackedBytes, 10),
	}
}

// speed renders bytes per second as "12.3MiB/s" and its decimal string.
func speed(bytes int64, d time.Duration) (string, string) {
	if d <= 0 {
		return "", ""
	}
	bps := int64(float64(bytes) / d.Seconds())
	return units.FormatBytes(uint64(max(bps, 0))) + "/s", strconv.FormatInt(bps, 10)
}

// readyStatus fills the status of a finished import.
func readyStatus(obj v1alpha2.Image, res *importer.Result, target string, gen int64, took time.Duration, sourceUID string) {
	st := obj.ImageStatus()
	st.Phase = v1alpha2.PhaseReady
	st.Progress = "100%"
	st.Size = sizeOf(res)
	st.Format = res.Format
	st.CDROM = &res.CDROM
	st.Target = &v1alpha2.Target{RegistryURL: target}
	st.ImportDuration = took.Round(100 * time.Millisecond).String()
	st.SourceUID = sourceUID
	if st.DownloadSpeed == nil {
		st.DownloadSpeed = &v1alpha2.DownloadSpeed{}
	}
	st.DownloadSpeed.Avg, st.DownloadSpeed.AvgBytes = speed(res.SourceBytes, took)
	st.DownloadSpeed.Current, st.DownloadSpeed.CurrentBytes = "", ""
	st.ObservedGeneration = gen
	setCondition(obj, v1alpha2.ConditionDatasourceReady, metav1.ConditionTrue, v1alpha2.ReasonSourceAvailable, "")
	setCondition(obj, v1alpha2.ConditionReady, metav1.ConditionTrue, v1alpha2.ReasonReady,
		fmt.Sprintf("%s image, %s stored, %s unpacked", res.Format, st.Size.Stored, st.Size.Unpacked))
}

// failedStatus fills the status of a failed import.
func failedStatus(obj v1alpha2.Image, reason, msg string, gen int64) {
	st := obj.ImageStatus()
	st.Phase = v1alpha2.PhaseFailed
	st.ObservedGeneration = gen
	st.DownloadSpeed = nil
	setCondition(obj, v1alpha2.ConditionReady, metav1.ConditionFalse, reason, msg)
}

// retryingStatus fills the status of an attempt that failed for a reason
// that passes (failureMessage says when the next one starts): the image is
// still being provisioned, nobody has to act. The next attempt starts over,
// so the progress does too.
func retryingStatus(obj v1alpha2.Image, msg string, gen int64) {
	st := obj.ImageStatus()
	st.Phase = v1alpha2.PhaseProvisioning
	st.Progress = formatProgress(0)
	st.ObservedGeneration = gen
	st.DownloadSpeed = nil
	setCondition(obj, v1alpha2.ConditionReady, metav1.ConditionFalse, v1alpha2.ReasonProvisioningRetrying, msg)
}

// attemptFailedStatus writes a failed attempt: Failed when a person must
// act, else Provisioning with the retry. It returns the Ready reason.
func attemptFailedStatus(obj v1alpha2.Image, err error, msg string, gen int64) string {
	if needsPerson(err) {
		failedStatus(obj, v1alpha2.ReasonProvisioningFailed, msg, gen)
		return v1alpha2.ReasonProvisioningFailed
	}
	retryingStatus(obj, msg, gen)
	return v1alpha2.ReasonProvisioningRetrying
}
